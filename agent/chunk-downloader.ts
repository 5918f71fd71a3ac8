// Reassembles chunked streams from S3: image files written at their offsets in parallel, or one stream in order.
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { ChunkRef, ImageFile } from './manifest.ts';
import type { SnapshotStore } from './snapshot-store.ts';

/**
 * Writes every image file into `dir` from its chunks, `concurrency` chunks at a time. Each worker reads a
 * chunk into a buffer of its own, reused for every chunk it fetches, checks it, and writes it with one call:
 * memory stays at concurrency x the largest chunk, and no byte is written before its chunk is verified.
 */
export async function downloadImages(
  store: SnapshotStore,
  images: readonly ImageFile[],
  dir: string,
  concurrency = 6,
  onBytes: (bytes: number) => void = () => undefined,
): Promise<number> {
  const handles = await Promise.all(images.map((image) => open(path.join(dir, image.name), 'wx', 0o600)));
  const jobs: Array<{ index: number; offset: number; chunk: ChunkRef }> = [];
  images.forEach((image, index) => {
    let offset = 0;
    for (const chunk of image.chunks) {
      jobs.push({ index, offset, chunk });
      offset += chunk.bytes;
    }
  });
  const largest = jobs.reduce((max, job) => Math.max(max, job.chunk.bytes), 0);
  let next = 0;
  let bytes = 0;
  const worker = async (): Promise<void> => {
    const buffer = Buffer.allocUnsafe(largest);
    while (next < jobs.length) {
      const job = jobs[next++]!;
      const data = await store.readChunkInto(job.chunk.sha256, job.chunk.bytes, buffer);
      await handles[job.index]!.write(data, 0, data.length, job.offset);
      bytes += data.length;
      onBytes(data.length);
    }
  };
  try {
    const results = await Promise.allSettled(Array.from({ length: Math.min(concurrency, jobs.length) }, worker));
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
        const chunk = chunks[next++]!;
        const fetching = store.getChunk(chunk.sha256, chunk.bytes);
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
