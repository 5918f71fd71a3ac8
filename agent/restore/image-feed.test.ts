// A streamed image comes out of its chunks in order and byte-exact, checked chunk by chunk, with reads ahead bounded and retries handled once.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { seededAcgtLines } from '../../test/support/seeded-text.ts';
import type { ChunkRef, ImageFile } from '../store/manifest.ts';
import { encodeChunk } from '../transfer/chunk-encoding.ts';
import { ChunkWorkers } from '../transfer/chunk-workers.ts';
import type { BodySink } from '../transfer/direct-range-get.ts';
import { chunkImageFeed, fileImageFeed, planImageRanges, SharedReads } from './image-feed.ts';
import { PipeClosedError, type ImageFeed } from '../../criu-bridge/image-stream-server.ts';

const MiB = 1 << 20;
const workers = new ChunkWorkers(2);
afterAll(() => workers.close());

/** Packs built from chunks as a checkpoint stores them: each chunk encoded, appended to its pack, and referenced. */
class PackedStore {
  readonly packs = new Map<string, Buffer>();
  /** Ranged reads under way, and the most there were at once. */
  inFlight = 0;
  mostInFlight = 0;
  /** Reads that deliver part of their range, then restart (as the SDK retries a cut connection). */
  retryEveryRead = false;

  add(pack: string, raw: Buffer, compress: boolean): ChunkRef {
    const encoded = encodeChunk(raw, compress);
    const before = this.packs.get(pack) ?? Buffer.alloc(0);
    this.packs.set(pack, Buffer.concat([before, encoded.stored]));
    return {
      digest: encoded.digest,
      bytes: raw.length,
      pack,
      offset: before.length,
      ...(encoded.encoding === 'zstd' ? { encoding: 'zstd' as const, storedBytes: encoded.stored.length } : {}),
    };
  }

  async readPackRange(pack: string, offset: number, bytes: number, sink: BodySink): Promise<void> {
    this.inFlight++;
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
    try {
      const body = this.packs.get(pack)!.subarray(offset, offset + bytes);
      await new Promise((resolve) => setImmediate(resolve));
      if (this.retryEveryRead) {
        sink.restart();
        sink.write(body.subarray(0, Math.floor(bytes * 0.7)));
      }
      sink.restart();
      // In socket-sized pieces, some read straight into the sink's buffers as a connection does.
      for (let at = 0; at < body.length; at += 65536) {
        await sink.ready?.();
        const piece = body.subarray(at, Math.min(body.length, at + 65536));
        const into = sink.into?.(piece.length);
        if (into) {
          // Its length taken first: a whole chunk goes to a worker in `write`, which leaves `into` empty.
          const taken = into.length;
          piece.copy(into, 0, 0, taken);
          sink.write(into as Buffer);
          if (taken < piece.length) sink.write(piece.subarray(taken));
        } else {
          sink.write(piece);
        }
      }
    } finally {
      this.inFlight--;
    }
  }
}

/** Collects what a feed writes, piece by piece; `onPiece` runs before each write resolves (to hold the pipe still, or stop). */
async function collect(
  feed: ImageFeed,
  { stopped = new AbortController().signal, onPiece = async () => undefined }: { stopped?: AbortSignal; onPiece?: (count: number) => Promise<void> } = {},
): Promise<{ bytes: Buffer; pieces: number; error?: Error }> {
  const pieces: Buffer[] = [];
  try {
    await feed(async (piece) => {
      pieces.push(Buffer.from(piece));
      await onPiece(pieces.length);
    }, stopped);
    return { bytes: Buffer.concat(pieces), pieces: pieces.length };
  } catch (error) {
    return { bytes: Buffer.concat(pieces), pieces: pieces.length, error: error as Error };
  }
}

/** An image of `windows` chunks of 1 MiB, random or text, in packs of 8 chunks, with the chunk at `repeatAt` a copy of the first. */
function pagesImage(store: PackedStore, seed: string, windows: number, { text = false, repeatAt = -1 } = {}): { image: ImageFile; raw: Buffer } {
  const raws: Buffer[] = [];
  const chunks: ChunkRef[] = [];
  for (let i = 0; i < windows; i++) {
    const raw = i === repeatAt ? raws[0]! : text ? seededAcgtLines(`${seed}-${i}`, MiB) : seededBytes(`${seed}-${i}`, MiB);
    raws.push(raw);
    // A recurring chunk is stored once, where it first was (dedup), and referenced again.
    chunks.push(i === repeatAt ? chunks[0]! : store.add(`${seed}-pack-${Math.floor(i / 8)}`, raw, text));
  }
  return { image: { name: 'pages-1.img', bytes: windows * MiB, chunks }, raw: Buffer.concat(raws) };
}

describe('planImageRanges', () => {
  it("reads chunks back to back in a pack together, up to the limit, in the image's order, a recurring chunk again where it recurs", () => {
    const c = (pack: string, offset: number, bytes = MiB): ChunkRef => ({ digest: `sha256:${'0'.repeat(64)}`, bytes, pack, offset });
    const image: ImageFile = { name: 'pages-1.img', bytes: 6 * MiB, chunks: [c('b', 0), c('b', MiB), c('a', 0), c('b', 0), c('b', MiB), c('b', 2 * MiB)] };
    const ranges = planImageRanges(image, 2 * MiB);
    expect(ranges.map((r) => [r.pack, r.offset, r.bytes, r.chunks.map((x) => x.destinations[0]!.offset / MiB)])).toEqual([
      ['b', 0, 2 * MiB, [0, 1]],
      ['a', 0, MiB, [2]],
      ['b', 0, 2 * MiB, [3, 4]],
      ['b', 2 * MiB, MiB, [5]],
    ]);
  });
});

describe('chunkImageFeed', () => {
  it('writes the image byte-exact and in order, raw and compressed chunks alike, with at most readsAhead reads at once', async () => {
    for (const text of [false, true]) {
      const store = new PackedStore();
      const { image, raw } = pagesImage(store, `order-${text}`, 24, { text, repeatAt: 13 });
      if (text) expect(image.chunks.every((c) => c.encoding === 'zstd')).toBe(true);
      let counted = 0;
      const got = await collect(chunkImageFeed(store, image, { readsAhead: 2, workers, onBytes: (n) => (counted += n) }));
      expect(got.error).toBeUndefined();
      expect(got.bytes.equals(raw)).toBe(true);
      expect(counted).toBe(raw.length);
      expect(store.mostInFlight).toBe(2);
    }
  });

  it('hands each chunk over once when a read restarts partway', async () => {
    const store = new PackedStore();
    store.retryEveryRead = true;
    const { image, raw } = pagesImage(store, 'retry', 10);
    const got = await collect(chunkImageFeed(store, image, { readsAhead: 3, workers }));
    expect(got.error).toBeUndefined();
    expect(got.bytes.equals(raw)).toBe(true);
  });

  it('ends at a chunk that fails its check, having written only the chunks before it', async () => {
    for (const text of [false, true]) {
      const store = new PackedStore();
      const { image, raw } = pagesImage(store, `tamper-${text}`, 12, { text });
      // One byte of the sixth chunk flipped in its pack, as a damaged object would be.
      const bad = image.chunks[5]!;
      const pack = store.packs.get(bad.pack)!;
      pack[bad.offset + 100]! ^= 0xff;
      const got = await collect(chunkImageFeed(store, image, { readsAhead: 4, workers }));
      expect(got.error?.name).toBe('ChecksumMismatchError');
      expect(got.error?.message).toContain(`pack ${bad.pack} bytes ${bad.offset}+`);
      expect(got.bytes.equals(raw.subarray(0, 5 * MiB))).toBe(true);
    }
  });

  it('ends when a read fails for good, having written only whole chunks before it', async () => {
    const store = new PackedStore();
    const { image, raw } = pagesImage(store, 'cut', 20);
    const failing = {
      readPackRange: (pack: string, offset: number, bytes: number, sink: BodySink) =>
        pack.endsWith('pack-1') ? Promise.reject(new Error('connection reset after 3 retries')) : store.readPackRange(pack, offset, bytes, sink),
    };
    const got = await collect(chunkImageFeed(failing, image, { readsAhead: 2, workers }));
    expect(got.error?.message).toBe('connection reset after 3 retries');
    expect(got.bytes.equals(raw.subarray(0, 8 * MiB))).toBe(true);
  });

  it("shares its reads ahead with the restore's other images, each keeping one of its own, so that a pipe that does not move holds up no other", async () => {
    const store = new PackedStore();
    const first = pagesImage(store, 'shared-a', 16);
    const second = pagesImage(store, 'shared-b', 16);
    const shared = new SharedReads(2);
    // CRIU reads the first image's pipe only once the second is done (as it restores one process, then the next).
    let secondDone!: () => void;
    const secondRead = new Promise<void>((resolve) => (secondDone = resolve));
    const reads = { 'shared-a': 0, 'shared-b': 0 };
    const counting = {
      readPackRange: (pack: string, offset: number, bytes: number, sink: BodySink) => {
        reads[pack.startsWith('shared-a') ? 'shared-a' : 'shared-b']++;
        return store.readPackRange(pack, offset, bytes, sink);
      },
    };
    const held = collect(chunkImageFeed(counting, first.image, { readsAhead: 4, workers, shared }), {
      onPiece: (n) => (n === 1 ? secondRead : Promise.resolve()),
    });
    const other = await collect(chunkImageFeed(counting, second.image, { readsAhead: 4, workers, shared }));
    // The held image read its own range and both shared ones ahead, not the four it may: the other still finished.
    expect(reads['shared-a']).toBe(3);
    expect(other.error).toBeUndefined();
    expect(other.bytes.equals(second.raw)).toBe(true);
    secondDone();
    const got = await held;
    expect(got.error).toBeUndefined();
    expect(got.bytes.equals(first.raw)).toBe(true);
    expect(shared.mostOut).toBe(2);
  });

  it('stops when the server stops: no read more, and the write it was at is not waited for', async () => {
    const store = new PackedStore();
    const { image, raw } = pagesImage(store, 'stop', 24);
    const stopping = new AbortController();
    let reads = 0;
    const counting = {
      readPackRange: (pack: string, offset: number, bytes: number, sink: BodySink) => {
        reads++;
        return store.readPackRange(pack, offset, bytes, sink);
      },
    };
    const got = await collect(chunkImageFeed(counting, image, { readsAhead: 2, workers }), {
      stopped: stopping.signal,
      onPiece: async (n) => {
        if (n === 3) stopping.abort();
      },
    });
    expect(got.error).toBeInstanceOf(PipeClosedError);
    expect(got.error?.message).toBe('the restore no longer reads image pages-1.img');
    expect(got.bytes.equals(raw.subarray(0, 3 * MiB))).toBe(true);
    // The two reads under way when it stopped, of the six an uninterrupted feed makes (4 MiB ranges), and none after.
    expect(reads).toBe(2);
  });

  it('refuses fewer than one read ahead', () => {
    expect(() => chunkImageFeed(new PackedStore(), { name: 'x', bytes: 0, chunks: [] }, { readsAhead: 0 })).toThrow('at least one read ahead, not 0');
  });
});

describe('fileImageFeed', () => {
  it('writes a file as it is, in pieces no larger than a chunk buffer', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-feed-'));
    const data = seededBytes('file-feed', 2 * MiB + 123);
    await writeFile(path.join(dir, 'core-1.img'), data);
    const got = await collect(fileImageFeed(path.join(dir, 'core-1.img')));
    expect(got.bytes.equals(data)).toBe(true);
    expect(got.pieces).toBe(3);
  });
});
