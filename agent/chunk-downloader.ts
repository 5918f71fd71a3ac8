// Reassembles chunked streams from S3: image files written at their offsets in parallel, or one stream in order.
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ChunkRef, ImageFile } from './manifest.ts';
import { verifyChunk, type SnapshotStore } from './snapshot-store.ts';
import { PACK_BYTES, releaseTransferBuffer, takeTransferBuffer } from './transfer-buffers.ts';

/** Where one chunk's bytes go: an image file (by index) at an offset. */
interface Destination {
  image: number;
  offset: number;
}

/** One ranged read: chunks that lie back to back in one pack, each with every place it goes. */
export interface PackRange {
  pack: string;
  offset: number;
  bytes: number;
  chunks: Array<{ ref: ChunkRef; destinations: Destination[] }>;
}

/**
 * Plans the reads for a set of image files: each distinct chunk is read once, and chunks stored back to back
 * in a pack are read together, up to `maxBytes` a read (a whole pack, for a first checkpoint's images).
 */
export function planPackRanges(images: readonly ImageFile[], maxBytes = PACK_BYTES): PackRange[] {
  const byChunk = new Map<string, { ref: ChunkRef; destinations: Destination[] }>();
  images.forEach((image, index) => {
    let offset = 0;
    for (const ref of image.chunks) {
      const entry = byChunk.get(ref.sha256) ?? { ref, destinations: [] };
      entry.destinations.push({ image: index, offset });
      byChunk.set(ref.sha256, entry);
      offset += ref.bytes;
    }
  });
  const sorted = [...byChunk.values()].sort((a, b) => a.ref.pack.localeCompare(b.ref.pack) || a.ref.offset - b.ref.offset);
  const ranges: PackRange[] = [];
  for (const entry of sorted) {
    const last = ranges.at(-1);
    const { pack, offset, bytes } = entry.ref;
    if (last && last.pack === pack && last.offset + last.bytes === offset && last.bytes + bytes <= maxBytes) {
      last.bytes += bytes;
      last.chunks.push(entry);
    } else {
      ranges.push({ pack, offset, bytes, chunks: [entry] });
    }
  }
  return ranges;
}

/**
 * Writes every image file into `dir` from its chunks, `concurrency` ranged reads at a time. Each worker reads
 * into a buffer of its own, reused for every read, checks every chunk in it against its SHA-256, and only then
 * writes it: memory stays at concurrency x the largest read, and no byte is written before it is verified.
 */
export async function downloadImages(
  store: SnapshotStore,
  images: readonly ImageFile[],
  dir: string,
  concurrency = 4,
  onBytes: (bytes: number) => void = () => undefined,
): Promise<number> {
  const handles = await Promise.all(images.map((image) => open(path.join(dir, image.name), 'wx', 0o600)));
  const ranges = planPackRanges(images);
  const largest = ranges.reduce((max, range) => Math.max(max, range.bytes), 0);
  let next = 0;
  let bytes = 0;
  const worker = async (): Promise<void> => {
    const buffer = largest <= PACK_BYTES ? takeTransferBuffer() : Buffer.allocUnsafe(largest);
    try {
      while (next < ranges.length) {
        const range = ranges[next++]!;
        const data = await store.readPackRange(range.pack, range.offset, range.bytes, buffer);
        for (const { ref, destinations } of range.chunks) {
          const chunk = data.subarray(ref.offset - range.offset, ref.offset - range.offset + ref.bytes);
          verifyChunk(ref, chunk, `pack ${range.pack}`);
          for (const to of destinations) {
            await handles[to.image]!.write(chunk, 0, chunk.length, to.offset);
            bytes += chunk.length;
            onBytes(chunk.length);
          }
        }
      }
    } finally {
      releaseTransferBuffer(buffer);
    }
  };
  try {
    const results = await Promise.allSettled(Array.from({ length: Math.min(concurrency, ranges.length) }, worker));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const [index, image] of images.entries()) {
      const { size } = await handles[index]!.stat();
      if (size !== image.bytes) throw new Error(`image ${image.name} has ${size} bytes after its download, the manifest says ${image.bytes}`);
    }
    return bytes;
  } finally {
    await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
  }
}

/** The chunks' bytes in order as one stream, fetching up to `prefetch` chunks ahead; each is verified before it is passed on. */
export function chunkedStream(store: SnapshotStore, chunks: readonly ChunkRef[], prefetch = 4): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    const ahead: Array<Promise<Buffer>> = [];
    let next = 0;
    const fill = (): void => {
      while (ahead.length < prefetch && next < chunks.length) {
        const fetching = store.getChunk(chunks[next++]!);
        fetching.catch(() => undefined); // observed when its turn comes
        ahead.push(fetching);
      }
    };
    fill();
    while (ahead.length > 0) {
      const data = await ahead.shift()!;
      fill();
      yield data;
    }
  }
  return Readable.from(generate(), { objectMode: false });
}
