// Reads CRIU's image files while `criu dump` is still writing them, chunking and uploading as they grow.
//
// CRIU writes each image file once, front to back (that is what lets it stream images to a pipe), so the
// bytes below a file's current size are final: they can travel while the dump goes on, and the checkpoint
// takes about as long as the slower of dumping and uploading rather than their sum.
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ContentChunker } from './content-chunker.ts';
import type { ChunkUploader } from './chunk-uploader.ts';
import type { ImageFile } from './manifest.ts';

const READ_BYTES = 256 * 1024;

interface FollowedFile {
  handle: FileHandle;
  chunker: ContentChunker;
  /** Its chunks so far; `bytes` is also how far the file has been read. */
  image: ImageFile;
}

export interface FollowOptions {
  imagesDir: string;
  uploader: ChunkUploader;
  /** Names in the directory that are not images (CRIU's log). */
  exclude: ReadonlySet<string>;
  /** How often to look for new bytes while the dump runs. */
  pollMs?: number;
}

/**
 * Follows the directory until `dumpDone` settles, then reads what is left. Resolves with every image file and
 * its chunks; rejects if the dump or an upload fails (after closing its files).
 */
export async function followImages(options: FollowOptions, dumpDone: Promise<unknown>): Promise<ImageFile[]> {
  const files = new Map<string, FollowedFile>();
  let dumpEnded = false;
  let dumpError: unknown;
  void dumpDone.then(
    () => (dumpEnded = true),
    (error: unknown) => {
      dumpEnded = true;
      dumpError = error ?? new Error('criu dump failed');
    },
  );
  const readBuffer = Buffer.allocUnsafeSlow(READ_BYTES);
  try {
    for (;;) {
      const ended = dumpEnded;
      await readNewBytes(options, files, readBuffer);
      if (dumpError !== undefined) throw dumpError;
      if (ended) break;
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 50));
    }
    for (const file of files.values()) await file.chunker.flush(options.uploader.addingTo(file.image.chunks));
    return [...files.values()].map((f) => f.image).sort((a, b) => a.name.localeCompare(b.name));
  } finally {
    await Promise.all([...files.values()].map((f) => f.handle.close().catch(() => undefined)));
  }
}

async function readNewBytes(options: FollowOptions, files: Map<string, FollowedFile>, readBuffer: Buffer): Promise<void> {
  for (const name of (await readdir(options.imagesDir)).sort()) {
    if (options.exclude.has(name)) continue;
    let file = files.get(name);
    if (!file) {
      const full = path.join(options.imagesDir, name);
      if (!(await stat(full)).isFile()) continue;
      file = { handle: await open(full, 'r'), chunker: new ContentChunker(), image: { name, bytes: 0, chunks: [] } };
      files.set(name, file);
    }
    const { size } = await file.handle.stat();
    const image = file.image;
    if (size < image.bytes) throw new Error(`CRIU image ${name} shrank from ${image.bytes} to ${size} bytes while it was read`);
    while (image.bytes < size) {
      const { bytesRead } = await file.handle.read(readBuffer, 0, Math.min(readBuffer.length, size - image.bytes), image.bytes);
      if (bytesRead === 0) break;
      image.bytes += bytesRead;
      // The chunker copies what it keeps, so the read buffer serves every read.
      await file.chunker.push(readBuffer.subarray(0, bytesRead), options.uploader.addingTo(image.chunks));
    }
  }
}
