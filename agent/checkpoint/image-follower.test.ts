// The image follower holds one chunk of memory and one descriptor whatever the number of growing image files, and cuts where the content says.
import { appendFile, mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chunkDigest } from '../transfer/chunk-digest.ts';
import { ContentChunker, DEFAULT_CHUNKER } from '../transfer/content-chunker.ts';
import { ImageFollower, followImages, type FollowOptions } from './image-follower.ts';
import type { ChunkRef, ImageFile } from '../store/manifest.ts';

const digest = (b: Buffer) => chunkDigest(b);

/** Deterministic pseudo-random numbers (xorshift32), so that every run writes the same files in the same order. */
function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function randomBytesFrom(next: () => number, length: number): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  return Buffer.from(words.buffer, 0, length);
}

/** An uploader that keeps each chunk by digest, copying it a turn after it is handed over (as a pack would). */
function fakeUploader() {
  const stored = new Map<string, Buffer>();
  return {
    stored,
    addingTo(refs: ChunkRef[]) {
      return async (chunk: Buffer) => {
        const before = digest(chunk);
        await new Promise((resolve) => setImmediate(resolve));
        expect(digest(chunk)).toBe(before);
        stored.set(before, Buffer.from(chunk));
        refs.push({ digest: before, bytes: chunk.length, pack: 'fake', offset: 0 });
      };
    },
  };
}

/** The chunks one ContentChunker cuts from the whole of `data`: where the follower must cut too. */
async function wholeFileCuts(data: Buffer): Promise<string[]> {
  const chunker = new ContentChunker();
  const digests: string[] = [];
  const keep = async (chunk: Buffer) => void digests.push(digest(chunk));
  await chunker.push(data, keep);
  await chunker.flush(keep);
  return digests;
}

/** Resolves once the follower has completed `count` more looks through the directory. */
async function passesLater(follower: ImageFollower, count: number): Promise<void> {
  const target = follower.counters.passes + count;
  while (follower.counters.passes < target) await new Promise((resolve) => setImmediate(resolve));
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'image-follower-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ImageFollower', () => {
  it('follows 64 image files growing at once in one chunk of memory and one descriptor, cutting as one chunker over each whole file', async () => {
    const next = seeded(0x5eed14);
    const FILES = 64;
    // Sizes from empty to a few chunks; every file grows in pieces that are not whole blocks, some pause for rounds.
    const contents = Array.from({ length: FILES }, (_, i) => randomBytesFrom(next, i % 16 === 0 ? 0 : next() % (3 << 20)));
    const names = contents.map((_, i) => `pages-${i + 1}.img`);
    await Promise.all(names.map((name) => writeFile(path.join(dir, name), '')));
    await writeFile(path.join(dir, 'dump.log'), 'not an image');
    await mkdir(path.join(dir, 'not-a-file'));

    const uploader = fakeUploader();
    const follower = new ImageFollower({ imagesDir: dir, uploader, exclude: new Set(['dump.log']), pollMs: 1 });
    let finishDump!: () => void;
    const following = follower.follow(new Promise<void>((resolve) => (finishDump = resolve)));

    const written = new Array<number>(FILES).fill(0);
    let rounds = 0;
    while (written.some((w, i) => w < contents[i]!.length)) {
      rounds++;
      for (let i = 0; i < FILES; i++) {
        if (written[i]! >= contents[i]!.length || next() % 3 === 0) continue;
        const piece = 1 + (next() % (400 << 10));
        const end = Math.min(contents[i]!.length, written[i]! + piece);
        await appendFile(path.join(dir, names[i]!), contents[i]!.subarray(written[i]!, end));
        written[i] = end;
      }
      // The follower reads while the files grow: two whole looks after each round of writes.
      await passesLater(follower, 2);
    }
    finishDump();
    const images = await following;

    expect(rounds).toBeGreaterThan(10);
    expect(images.map((f) => f.name)).toEqual([...names].sort());
    const byName = new Map(images.map((f) => [f.name, f]));
    let totalBytes = 0;
    for (const [i, name] of names.entries()) {
      const image = byName.get(name)!;
      const data = contents[i]!;
      totalBytes += data.length;
      expect(image.bytes).toBe(data.length);
      expect(Buffer.concat(image.chunks.map((c) => uploader.stored.get(c.digest)!)).equals(data)).toBe(true);
      expect(image.chunks.map((c) => c.digest)).toEqual(await wholeFileCuts(data));
    }
    expect(images.reduce((n, f) => n + f.chunks.length, 0)).toBeGreaterThan(FILES);

    const counters = follower.counters;
    expect(counters.files).toBe(FILES);
    expect(counters.mostOpenHandles).toBe(1);
    expect(counters.openHandles).toBe(0);
    expect(counters.bufferBytes).toBe(DEFAULT_CHUNKER.maxBytes);
    expect(counters.mostHeldBytes).toBeLessThanOrEqual(DEFAULT_CHUNKER.maxBytes);
    expect(counters.heldBytes).toBe(0);
    // Each chunk's bytes from earlier looks are read back once, at its cut: at most every byte twice.
    expect(counters.readBytes).toBeGreaterThanOrEqual(totalBytes);
    expect(counters.readBytes).toBeLessThanOrEqual(2 * totalBytes);
  });

  it('reads a file that stopped growing again when it grows later, with the cuts of the whole file', async () => {
    const next = seeded(77);
    const data = randomBytesFrom(next, 5 << 20);
    const file = path.join(dir, 'files.img');
    await writeFile(file, '');
    const uploader = fakeUploader();
    const follower = new ImageFollower({ imagesDir: dir, uploader, exclude: new Set(), pollMs: 1 });
    let finishDump!: () => void;
    const following = follower.follow(new Promise<void>((resolve) => (finishDump = resolve)));
    // Growth in bursts with looks between them in which it does not grow at all.
    for (const end of [100, 700_001, 700_512, 2_000_000, 2_000_003, 5 << 20]) {
      const from = (await readFile(file)).length;
      await appendFile(file, data.subarray(from, end));
      await passesLater(follower, 3);
    }
    finishDump();
    const [image] = (await following) as [ImageFile];
    expect(Buffer.concat(image.chunks.map((c) => uploader.stored.get(c.digest)!)).equals(data)).toBe(true);
    expect(image.chunks.map((c) => c.digest)).toEqual(await wholeFileCuts(data));
    expect(follower.counters.mostOpenHandles).toBe(1);
  });

  it('rejects with the file named when an image shrinks, leaving no file open', async () => {
    const file = path.join(dir, 'core-1.img');
    await writeFile(file, Buffer.alloc(4096, 7));
    const follower = new ImageFollower({ imagesDir: dir, uploader: fakeUploader(), exclude: new Set(), pollMs: 1 });
    const following = follower.follow(new Promise(() => undefined));
    const rejected = expect(following).rejects.toThrow('CRIU image core-1.img shrank from 4096 to 1000 bytes while it was read');
    await passesLater(follower, 1);
    await truncate(file, 1000);
    await rejected;
    expect(follower.counters.openHandles).toBe(0);
  });

  it('rejects with the upload failure or the dump failure, leaving no file open', async () => {
    await writeFile(path.join(dir, 'pages-1.img'), randomBytesFrom(seeded(3), 2 << 20));
    const failing: FollowOptions['uploader'] = {
      addingTo: () => async () => {
        throw new Error('pack upload failed: 503');
      },
    };
    const follower = new ImageFollower({ imagesDir: dir, uploader: failing, exclude: new Set(), pollMs: 1 });
    await expect(follower.follow(Promise.resolve())).rejects.toThrow('pack upload failed: 503');
    expect(follower.counters.openHandles).toBe(0);

    const dumpFailed = Promise.reject(new Error('criu dump of PID 7 failed (exit 1)'));
    await expect(followImages({ imagesDir: dir, uploader: fakeUploader(), exclude: new Set(), pollMs: 1 }, dumpFailed)).rejects.toThrow(
      'criu dump of PID 7 failed',
    );
  });
});
