// The body of one chunk worker thread: hashes, compresses and decompresses the chunks the main thread hands it.
import { writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { collectYoungGarbage } from '../shared/garbage-collection.ts';
import { blake3Unavailable, chunkDigest, digestAlgorithm, type ChunkDigestAlgorithm } from './chunk-digest.ts';
import { decodeChunk, encodeKnownHash, type ChunkEncoding } from './chunk-encoding.ts';
import { crc32 } from './crc32.ts';

/** What the pool sends a worker. Buffers travel as transferred ArrayBuffers, never copied. */
export type WorkerRequest =
  | { kind: 'known'; digests: string[] }
  | { kind: 'encode'; job: number; raw: Uint8Array; compress: boolean; algorithm: ChunkDigestAlgorithm }
  | { kind: 'decode'; job: number; stored: Uint8Array; encoding: ChunkEncoding; bytes: number; digest: string; what: string; writes?: FileWrite[] };

/** Where a decoded chunk is written: a descriptor of this process (shared by its threads) and a position in its file. */
export interface FileWrite {
  fd: number;
  position: number;
}

export type WorkerReply =
  | {
      job: number;
      kind: 'encoded';
      digest: string;
      bytes: number;
      known: boolean;
      encoding: ChunkEncoding;
      crc32: number;
      raw: Uint8Array;
      stored?: Uint8Array;
      zstdMs?: number;
    }
  | { job: number; kind: 'decoded'; raw?: Uint8Array; stored: Uint8Array }
  | { job: number; kind: 'failed'; message: string };

/** A copy of the bytes in an ArrayBuffer of its own, which can be transferred without taking anything from its source. */
export function transferable(view: Uint8Array): Uint8Array {
  const own = new Uint8Array(new ArrayBuffer(view.byteLength));
  own.set(view);
  return own;
}

/**
 * zstd's output as it can travel: itself, over the ArrayBuffer zlib allocated for it (no copy), when it fills
 * at least half of it; else a copy of its bytes. zlib sizes that buffer for the whole input, so a chunk that
 * compressed well would carry a megabyte to hold a few kilobytes (and one smaller than Node's pool of small
 * buffers is shared, and must not travel at all). What is left here is freed by this thread's collection.
 */
function zstdOutputToSend(output: Uint8Array): Uint8Array {
  const own = output.buffer instanceof ArrayBuffer && output.buffer.byteLength > Buffer.poolSize;
  return own && output.byteLength * 2 >= output.buffer.byteLength ? output : transferable(output);
}

function asBuffer(view: Uint8Array): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

function writeAll(fd: number, data: Buffer, position: number): void {
  for (let written = 0; written < data.length; ) written += writeSync(fd, data, written, data.length - written, position + written);
}

let known = new Set<string>();

function handle(request: WorkerRequest): { reply: WorkerReply; transfer: ArrayBuffer[] } | undefined {
  if (request.kind === 'known') {
    known = new Set(request.digests);
    return undefined;
  }
  try {
    if (request.kind === 'encode') {
      const raw = asBuffer(request.raw);
      // A worker whose own BLAKE3 binding failed names the chunk by SHA-256: the main thread takes the digest it is given.
      const digest = chunkDigest(raw, request.algorithm === 'blake3' && blake3Unavailable() ? 'sha256' : request.algorithm);
      if (known.has(digest)) {
        return {
          reply: { job: request.job, kind: 'encoded', digest, bytes: raw.length, known: true, encoding: 'raw', crc32: 0, raw: request.raw },
          transfer: [request.raw.buffer as ArrayBuffer],
        };
      }
      const encoded = encodeKnownHash(raw, digest, request.compress);
      const stored = encoded.encoding === 'raw' ? undefined : zstdOutputToSend(encoded.stored);
      const transfer = [request.raw.buffer as ArrayBuffer, ...(stored ? [stored.buffer as ArrayBuffer] : [])];
      // The CRC-32 of the bytes as stored: the pack's, which S3 checks, is combined from its chunks'.
      const checksum = crc32(encoded.stored);
      return {
        reply: {
          job: request.job,
          kind: 'encoded',
          digest,
          bytes: raw.length,
          known: false,
          encoding: encoded.encoding,
          crc32: checksum,
          raw: request.raw,
          stored,
          zstdMs: encoded.zstdMs,
        },
        transfer,
      };
    }
    const decoded = decodeChunk(asBuffer(request.stored), request.encoding, request.bytes, request.what);
    const digest = chunkDigest(decoded, digestAlgorithm(request.digest));
    if (digest !== request.digest) {
      throw new Error(`${request.what}: digest ${digest} (${decoded.byteLength} bytes) does not match the manifest's ${request.digest}`);
    }
    if (request.writes) {
      // Written here, once checked: the raw bytes never cross back to the main thread, only the stored buffer, for reuse.
      for (const { fd, position } of request.writes) writeAll(fd, decoded, position);
      return { reply: { job: request.job, kind: 'decoded', stored: request.stored }, transfer: [request.stored.buffer as ArrayBuffer] };
    }
    // A raw chunk decodes to its stored bytes themselves: one buffer goes back, listed once.
    const raw = decoded.buffer === request.stored.buffer ? request.stored : zstdOutputToSend(decoded);
    const transfer = raw.buffer === request.stored.buffer ? [raw.buffer as ArrayBuffer] : [raw.buffer as ArrayBuffer, request.stored.buffer as ArrayBuffer];
    return { reply: { job: request.job, kind: 'decoded', raw, stored: request.stored }, transfer };
  } catch (error) {
    return { reply: { job: request.job, kind: 'failed', message: error instanceof Error ? error.message : String(error) }, transfer: [] };
  }
}

/** Whether zstd ran for this request: it left an output (or its copy) that is dead once the answer is sent. */
function ranZstd(request: WorkerRequest, reply: WorkerReply): boolean {
  if (request.kind === 'decode') return request.encoding !== 'raw';
  return reply.kind === 'encoded' && reply.zstdMs !== undefined;
}

parentPort?.on('message', (request: WorkerRequest) => {
  const answer = handle(request);
  if (!answer) return;
  try {
    parentPort!.postMessage(answer.reply, answer.transfer);
  } catch (error) {
    // A reply that cannot be sent fails its job, not the worker.
    parentPort!.postMessage({
      job: answer.reply.job,
      kind: 'failed',
      message: `a chunk worker could not answer: ${error instanceof Error ? error.message : String(error)}`,
    } satisfies WorkerReply);
  }
  // Freed now, not once 64 MiB of them piled up (garbage-collection.ts).
  if (ranZstd(request, answer.reply)) collectYoungGarbage();
});
