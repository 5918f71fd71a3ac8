// A pool of worker threads that hash, compress and decompress chunks, so that every core the task may use works on a checkpoint.
//
// The main thread only moves buffers: a chunk's bytes are transferred to a worker and back, never copied
// between threads. Each job goes to the worker with the fewest jobs; the caller bounds how many are
// outstanding (each holds its chunk). Workers keep the process alive only while they hold a job.
import { Worker } from 'node:worker_threads';
import { blake3Unavailable, preferredChunkDigest } from './chunk-digest.ts';
import { crc32Implementation } from './crc32.ts';
import type { ChunkEncoding, EncodedChunk } from './chunk-encoding.ts';
import { transferable, type FileWrite, type WorkerReply, type WorkerRequest } from './chunk-worker.ts';
import { workerCount } from './worker-count.ts';

/** The worker's module: beside this one as TypeScript in the source tree, as a bundled .mjs in the task image. */
function workerUrl(): URL {
  const here = import.meta.url;
  return new URL(here.endsWith('.ts') ? './chunk-worker.ts' : './chunk-worker.mjs', here);
}

export interface EncodeResult extends EncodedChunk {
  /** The chunk's digest is in the known set: nothing was compressed and `stored` is `raw`. */
  known: boolean;
  /** The raw bytes, handed back (the same memory the caller passed in). */
  raw: Buffer;
  /** CRC-32 of `stored` (0 when known). */
  crc32: number;
}

interface Pending {
  resolve: (reply: WorkerReply) => void;
  reject: (error: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  jobs: Map<number, Pending>;
}

function asBuffer(view: Uint8Array): Buffer {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

export class ChunkWorkers {
  readonly size: number;
  private readonly workers: PoolWorker[] = [];
  private nextJob = 1;
  private known: string[] = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`a chunk worker pool needs a whole number of workers >= 1, not ${size}`);
    this.size = size;
  }

  /** Chunks S3 already has, by digest: a worker hashes them and hands them back without compressing them. */
  setKnown(digests: Iterable<string>): void {
    this.known = [...digests];
    for (const w of this.workers) w.worker.postMessage({ kind: 'known', digests: this.known } satisfies WorkerRequest);
  }

  /**
   * Hashes `raw` (by this process's preferred chunk digest) and, unless its digest is known, compresses it when
   * that pays. With `owned`, `raw`'s ArrayBuffer (which nothing else may share) is transferred to the worker:
   * the caller must not touch it until the result hands it back as `raw`.
   */
  async encode(raw: Buffer, compress: boolean, owned = false): Promise<EncodeResult> {
    // An owned buffer's whole ArrayBuffer travels (and comes back); any other is copied first, so its owner keeps it.
    const view = owned ? raw : transferable(raw);
    const algorithm = preferredChunkDigest();
    const reply = await this.run((job) => ({ kind: 'encode', job, raw: view, compress, algorithm }), [view.buffer as ArrayBuffer]);
    if (reply.kind !== 'encoded') throw new Error(`chunk worker answered ${reply.kind} to an encode`);
    const back = asBuffer(reply.raw);
    return {
      digest: reply.digest,
      bytes: reply.bytes,
      known: reply.known,
      encoding: reply.encoding,
      crc32: reply.crc32,
      zstdMs: reply.zstdMs,
      raw: back,
      stored: reply.stored ? asBuffer(reply.stored) : back,
    };
  }

  /** The raw bytes of a stored chunk, checked against its digest; rejects, naming `what`, when they are not its bytes. */
  async decode(stored: Buffer, encoding: ChunkEncoding, bytes: number, digest: string, what: string): Promise<Buffer> {
    const view = transferable(stored); // the caller keeps its bytes
    const reply = await this.run((job) => ({ kind: 'decode', job, stored: view, encoding, bytes, digest, what }), [view.buffer as ArrayBuffer]);
    if (reply.kind !== 'decoded' || !reply.raw) throw new Error(`chunk worker answered ${reply.kind} to a decode`);
    return asBuffer(reply.raw);
  }

  /**
   * Checks a stored chunk as `decode` does, `stored` (which must own its ArrayBuffer) transferred rather than
   * copied: resolves with its raw bytes and `stored` handed back for reuse (the same memory, for a raw chunk).
   */
  async decodeTransferred(stored: Buffer, encoding: ChunkEncoding, bytes: number, digest: string, what: string): Promise<{ raw: Buffer; stored: Buffer }> {
    const reply = await this.run((job) => ({ kind: 'decode', job, stored, encoding, bytes, digest, what }), [stored.buffer as ArrayBuffer]);
    if (reply.kind !== 'decoded' || !reply.raw) throw new Error(`chunk worker answered ${reply.kind} to a decode`);
    return { raw: asBuffer(reply.raw), stored: asBuffer(reply.stored) };
  }

  /**
   * Checks a stored chunk as `decode` does and, once it passed, writes its raw bytes at each of `writes` from the
   * worker (a descriptor is the process's, whatever thread writes). `stored` (which must own its ArrayBuffer) is
   * transferred, and handed back for reuse once done; rejects, naming `what`, when it is not its chunk.
   */
  async decodeAndWrite(stored: Buffer, encoding: ChunkEncoding, bytes: number, digest: string, what: string, writes: FileWrite[]): Promise<Buffer> {
    const reply = await this.run((job) => ({ kind: 'decode', job, stored, encoding, bytes, digest, what, writes }), [stored.buffer as ArrayBuffer]);
    if (reply.kind !== 'decoded') throw new Error(`chunk worker answered ${reply.kind} to a decode`);
    return asBuffer(reply.stored);
  }

  /**
   * Starts every worker now, so that their start (about 0.1 CPU-second each, to load their module) is paid
   * while the task runs rather than within a spot notice's two minutes.
   */
  warm(): void {
    while (this.workers.length < this.size) this.spawn();
  }

  /** Stops every worker; jobs still out are rejected. */
  async close(): Promise<void> {
    const stopping = this.workers.splice(0).map((w) => w.worker.terminate());
    await Promise.all(stopping);
  }

  private run(request: (job: number) => WorkerRequest, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    const target = this.leastBusy();
    const job = this.nextJob++;
    return new Promise<WorkerReply>((resolve, reject) => {
      target.jobs.set(job, { resolve, reject });
      if (target.jobs.size === 1) target.worker.ref();
      try {
        target.worker.postMessage(request(job), transfer);
      } catch (error) {
        target.jobs.delete(job);
        if (target.jobs.size === 0) target.worker.unref();
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    }).then((reply) => {
      if (reply.kind === 'failed') throw new Error(reply.message);
      return reply;
    });
  }

  private leastBusy(): PoolWorker {
    if (this.workers.length < this.size) {
      const idle = this.workers.find((w) => w.jobs.size === 0);
      if (idle) return idle;
      return this.spawn();
    }
    return this.workers.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
  }

  private spawn(): PoolWorker {
    // The main thread loads the native bindings the worker will: an addon loaded only by a worker thread can
    // bring the process down when that worker exits (its thread-local destructors run in unloaded code).
    blake3Unavailable();
    crc32Implementation();
    // Small heaps: a worker holds no more than the chunk it works on, which lives outside V8's heap.
    const worker = new Worker(workerUrl(), { resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 } });
    const entry: PoolWorker = { worker, jobs: new Map() };
    worker.unref();
    if (this.known.length > 0) worker.postMessage({ kind: 'known', digests: this.known } satisfies WorkerRequest);
    worker.on('message', (reply: WorkerReply) => {
      const pending = entry.jobs.get(reply.job);
      if (!pending) return;
      entry.jobs.delete(reply.job);
      if (entry.jobs.size === 0) worker.unref();
      pending.resolve(reply);
    });
    const fail = (error: Error): void => {
      const index = this.workers.indexOf(entry);
      if (index >= 0) this.workers.splice(index, 1);
      for (const p of entry.jobs.values()) p.reject(new Error(`a chunk worker stopped: ${error.message}`));
      entry.jobs.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`it exited with code ${code}`)));
    this.workers.push(entry);
    return entry;
  }
}

let shared: ChunkWorkers | undefined;

/** The process's pool, of `size` workers (default: workerCount's for 'auto'); a different size replaces it. */
export function sharedChunkWorkers(size?: number): ChunkWorkers {
  const wanted = size ?? shared?.size ?? workerCount('auto');
  if (shared && shared.size !== wanted) void shared.close();
  if (!shared || shared.size !== wanted) shared = new ChunkWorkers(wanted);
  return shared;
}
