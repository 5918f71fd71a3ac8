// Backpressure on the uploader: at most `concurrency` packs in flight, the rest spilled to disk up to the spill's limit, then sent; and a failed upload.
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { type ChunkRef, storedLength } from '../store/manifest.ts';
import { PACK_BYTES } from './buffer-pool.ts';
import { decodeChunk, encodeChunk } from './chunk-encoding.ts';
import { ChunkUploader, type PackStore, type UploaderOptions } from './chunk-uploader.ts';
import { type ChunkWorkers, ChunkWorkers as Pool, type EncodeResult } from './chunk-workers.ts';
import { PackSpill } from './pack-spill.ts';

const MiB = 1 << 20;
/** Incompressible chunks of half a pack: two fill a pack exactly, and a third seals it. */
const HALF_PACK = PACK_BYTES / 2;

interface PutCall {
  id: string;
  data: Buffer;
  crc32: number;
  signal: AbortSignal | undefined;
  done: boolean;
}

/**
 * A store whose puts resolve only when the test releases them (or once it opens), so that the uploader meets
 * backpressure where the test says. A put rejects when its signal aborts, as an S3 request would.
 */
class GatedStore implements PackStore {
  readonly calls: PutCall[] = [];
  private readonly gates: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private readonly waiters: Array<{ count: number; resolve: () => void }> = [];
  private opened = false;

  putPack(id: string, parts: readonly Buffer[], checksum: number, signal?: AbortSignal): Promise<void> {
    const call: PutCall = { id, data: Buffer.concat(parts), crc32: checksum, signal, done: false };
    this.calls.push(call);
    for (const w of this.waiters.filter((w) => w.count <= this.calls.length)) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
    if (this.opened) {
      call.done = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.gates.push({
        resolve: () => {
          call.done = true;
          resolve();
        },
        reject,
      });
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }

  /** Resolves once `count` puts have been called. */
  called(count: number): Promise<void> {
    if (this.calls.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Completes the oldest put still waiting. */
  releaseOne(): void {
    const gate = this.gates.shift();
    if (!gate) throw new Error('no put is waiting to be released');
    gate.resolve();
  }

  /** Fails the oldest put still waiting with `error`. */
  failOne(error: Error): void {
    const gate = this.gates.shift();
    if (!gate) throw new Error('no put is waiting to be failed');
    gate.reject(error);
  }

  /** Completes every put waiting, and every later one at once. */
  open(): void {
    this.opened = true;
    for (const gate of this.gates.splice(0)) gate.resolve();
  }

  /** Each pack put, by id; a pack put twice is an error of the uploader. */
  packs(): Map<string, PutCall> {
    const byId = new Map<string, PutCall>();
    for (const c of this.calls) {
      if (byId.has(c.id)) throw new Error(`pack ${c.id} was put twice`);
      byId.set(c.id, c);
    }
    return byId;
  }
}

/** The raw bytes of a chunk from the packs put: its stored bytes at its offset, decoded. */
function chunkIn(packs: Map<string, PutCall>, ref: ChunkRef): Buffer {
  const pack = packs.get(ref.pack);
  if (!pack) throw new Error(`pack ${ref.pack} never reached the store`);
  return decodeChunk(pack.data.subarray(ref.offset, ref.offset + storedLength(ref)), ref.encoding ?? 'raw', ref.bytes, `pack ${ref.pack}`);
}

/**
 * Workers on the main thread, each encode already complete: everything the uploader does next is promise
 * callbacks and the spill's file I/O, so that one turn of the event loop after an add lets it run as far as it can.
 */
class InlineWorkers {
  readonly size = 2;
  private known = new Set<string>();

  setKnown(hashes: Iterable<string>): void {
    this.known = new Set(hashes);
  }

  async encode(raw: Buffer, compress: boolean): Promise<EncodeResult> {
    const encoded = encodeChunk(raw, compress);
    if (this.known.has(encoded.digest)) return { digest: encoded.digest, bytes: raw.length, encoding: 'raw', stored: raw, known: true, raw, crc32: 0 };
    return { ...encoded, known: false, raw, crc32: crc32(encoded.stored) };
  }

  asPool(): ChunkWorkers {
    return this as unknown as ChunkWorkers;
  }
}

/** Lets every callback already due run: promise callbacks, and the I/O that completed. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Tracks whether a promise has settled, without waiting for it. */
function watch<T>(promise: Promise<T>): { settled: () => boolean } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { settled: () => settled };
}

async function packFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith('.pack')).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

const chunksOf = (seed: string, count: number) => Array.from({ length: count }, (_, i) => seededBytes(`${seed}-${i}`, HALF_PACK));

const workers = new Pool(2);
afterAll(() => workers.close());

const dirs: string[] = [];
async function spillDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-spill-test-'));
  dirs.push(dir);
  return path.join(dir, 'packs');
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A gated store and an uploader with one pack in flight at most that spills to a fresh directory up to `limitBytes`. */
async function spillingUploader(limitBytes: number, options: UploaderOptions = { workers: new InlineWorkers().asPool(), encodingAhead: 16 }) {
  const dir = await spillDir();
  const spill = new PackSpill(dir, limitBytes);
  const store = new GatedStore();
  const uploader = new ChunkUploader(store, new Map(), 1, options);
  uploader.spillTo(spill);
  return { dir, spill, store, uploader };
}

/** Adds each chunk, in order, as a copy the uploader owns, and pushes the promise of its ref onto `refs`. */
async function addEachOwned(uploader: ChunkUploader, chunks: Buffer[], refs: Array<Promise<ChunkRef>>): Promise<void> {
  for (const c of chunks) refs.push((await uploader.addOwned(Buffer.from(c))).ref);
}

/** Expects each chunk back, byte for byte, from the packs put, where its ref says. */
function expectChunksIn(packs: Map<string, PutCall>, refs: ChunkRef[], chunks: Buffer[]): void {
  for (const [i, ref] of refs.entries()) expect(chunkIn(packs, ref).equals(chunks[i]!)).toBe(true);
}

describe('PackSpill', () => {
  it('holds packs as files, oldest first, and deletes each once it is released', async () => {
    const dir = await spillDir();
    const spill = new PackSpill(dir, 3 * MiB);
    const a = seededBytes('spill-a', MiB);
    const b = seededBytes('spill-b', MiB + 17);
    expect(spill.hasRoomFor(3 * MiB)).toBe(true);
    expect(spill.hasRoomFor(3 * MiB + 1)).toBe(false);
    await spill.put('a', [a], crc32(a));
    await spill.put('b', [b.subarray(0, 10), b.subarray(10)], crc32(b));
    expect(spill.waiting).toBe(2);
    expect(spill.spilledPacks).toBe(2);
    expect(spill.mostBytes).toBe(2 * MiB + 17);
    expect(spill.hasRoomFor(MiB - 17)).toBe(true);
    expect(spill.hasRoomFor(MiB - 16)).toBe(false);
    expect(await packFiles(dir)).toEqual(['a.pack', 'b.pack']);
    expect((await readFile(path.join(dir, 'b.pack'))).equals(b)).toBe(true);

    const first = spill.takeNext()!;
    expect(first).toMatchObject({ id: 'a', crc32: crc32(a), bytes: MiB });
    expect(spill.waiting).toBe(1);
    const firstParts = await first.read();
    // Read back in chunk buffers (a megabyte each) of the process's pool, as the parts of one body.
    expect(firstParts.map((p) => p.length)).toEqual([MiB]);
    expect(Buffer.concat(firstParts).equals(a)).toBe(true);
    // Still held until released: its file is what a retry would read.
    expect(spill.hasRoomFor(MiB)).toBe(false);
    first.release();
    expect(spill.hasRoomFor(2 * MiB - 17)).toBe(true);
    const second = spill.takeNext()!;
    expect(second.id).toBe('b');
    const secondParts = await second.read();
    expect(secondParts.map((p) => p.length)).toEqual([MiB, 17]);
    expect(Buffer.concat(secondParts).equals(b)).toBe(true);
    second.release();
    expect(spill.takeNext()).toBeUndefined();
    expect(spill.mostBytes).toBe(2 * MiB + 17);
    // release deletes the files without waiting for it.
    await vi.waitFor(async () => expect(await packFiles(dir)).toEqual([]), { timeout: 5000 });
  });

  it('refuses a pack id it already holds, and a spilled file cut short', async () => {
    const dir = await spillDir();
    const spill = new PackSpill(dir, 8 * MiB);
    const a = seededBytes('spill-twice', 4096);
    await spill.put('a', [a], crc32(a));
    await expect(spill.put('a', [a], crc32(a))).rejects.toThrow(/EEXIST/);
    await truncate(path.join(dir, 'a.pack'), 1000);
    const next = spill.takeNext()!;
    await expect(next.read()).rejects.toThrow(`spilled pack ${path.join(dir, 'a.pack')} ended at 1000 of its 4096 bytes`);
    next.release();
  });

  it('discards what is left, directory and all', async () => {
    const dir = await spillDir();
    const spill = new PackSpill(dir, 8 * MiB);
    await spill.put('a', [Buffer.from('pack')], 0);
    await writeFile(path.join(dir, 'stray'), 'x');
    await spill.discard();
    expect(spill.waiting).toBe(0);
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
  });
});

describe('ChunkUploader under backpressure', () => {
  it('keeps at most `concurrency` packs in flight without a spill: the next sealed pack waits for a slot', async () => {
    const store = new GatedStore();
    const chunks = chunksOf('backpressure', 7);
    const uploader = new ChunkUploader(store, new Map(), 2, { workers: new InlineWorkers().asPool(), encodingAhead: 16 });
    // Each add's promise holds its ref's promise: awaiting the adds does not await the refs.
    const refs = (await Promise.all(chunks.map((c) => uploader.addOwned(Buffer.from(c))))).map((added) => added.ref);
    const watched = refs.map(watch);
    await turn();
    // Packs of chunks 0-1 and 2-3 are in flight; chunk 6 sealed the pack of 4-5 and waits for a slot.
    expect(store.calls).toHaveLength(2);
    expect(watched.map((w) => w.settled())).toEqual([true, true, true, true, true, true, false]);

    store.releaseOne();
    await store.called(3);
    await refs[6];
    expect(store.calls).toHaveLength(3);
    store.open();
    const transfer = await uploader.drain();
    expect(transfer).toMatchObject({ uploadedPacks: 4, storedBytes: 7 * HALF_PACK, uploadedBytes: 7 * HALF_PACK });
    const packs = store.packs();
    expectChunksIn(packs, await Promise.all(refs), chunks);
  });

  it('spills the packs beyond `concurrency` while the store is blocked, then sends them all from there', async () => {
    const { dir, spill, store, uploader } = await spillingUploader(64 * MiB, { workers });
    const chunks = chunksOf('spill', 7);
    const added: Array<Promise<ChunkRef>> = [];
    await addEachOwned(uploader, chunks, added);
    const refs = await Promise.all(added);

    // Three packs sealed: the first went to the store (which holds it), the next two to disk; the fourth is open.
    const ids = new Set(refs.map((r) => r.pack));
    expect(ids.size).toBe(4);
    expect(store.calls).toHaveLength(1);
    expect(store.calls[0]!.done).toBe(false);
    const files = await packFiles(dir);
    expect(files).toHaveLength(2);
    for (const f of files) expect(ids.has(f.replace(/\.pack$/, ''))).toBe(true);
    expect(files).not.toContain(`${store.calls[0]!.id}.pack`);
    expect(spill.waiting).toBe(2);
    expect(spill.spilledPacks).toBe(2);
    expect(spill.mostBytes).toBe(2 * PACK_BYTES);
    const spilledBytes = new Map(await Promise.all(files.map(async (f) => [f.replace(/\.pack$/, ''), await readFile(path.join(dir, f))] as const)));
    for (const data of spilledBytes.values()) expect(data.length).toBe(PACK_BYTES);

    store.open();
    const transfer = await uploader.drain();
    expect(transfer).toMatchObject({ totalChunks: 7, uploadedChunks: 7, uploadedPacks: 4, storedBytes: 7 * HALF_PACK });
    expect(uploader.sentBytes).toBe(7 * HALF_PACK);
    const packs = store.packs();
    expect(new Set(packs.keys())).toEqual(ids);
    for (const p of packs.values()) expect(p.crc32).toBe(crc32(p.data));
    for (const [id, data] of spilledBytes) expect(packs.get(id)!.data.equals(data)).toBe(true);
    expectChunksIn(packs, refs, chunks);
    expect(spill.waiting).toBe(0);
    expect(spill.hasRoomFor(spill.limitBytes)).toBe(true);
    // Each file is deleted as its upload completes, without drain waiting for the deletion.
    await vi.waitFor(async () => expect(await packFiles(dir)).toEqual([]), { timeout: 5000 });
  });

  it('spills no more than its limit: with room for one pack, the next sealed pack waits for a slot instead', async () => {
    const { dir, spill, store, uploader } = await spillingUploader(PACK_BYTES);
    const chunks = chunksOf('spill-limit', 7);
    const refs: Array<Promise<ChunkRef>> = [];
    await addEachOwned(uploader, chunks.slice(0, 5), refs);
    await refs[4]; // chunk 4 sealed the second pack, which spilled
    expect(await packFiles(dir)).toHaveLength(1);
    await addEachOwned(uploader, chunks.slice(5), refs);
    const sealingThird = watch(refs[6]!);
    await turn();
    expect(sealingThird.settled()).toBe(false);
    expect(spill.spilledPacks).toBe(1);
    expect(await packFiles(dir)).toHaveLength(1);
    expect(store.calls).toHaveLength(1);

    // The first upload completes: the spilled pack takes the slot, and the third still waits.
    store.releaseOne();
    await store.called(2);
    expect(sealingThird.settled()).toBe(false);
    expect(spill.spilledPacks).toBe(1);

    store.open();
    await refs[6];
    const transfer = await uploader.drain();
    expect(transfer).toMatchObject({ uploadedPacks: 4, storedBytes: 7 * HALF_PACK });
    expect(spill.spilledPacks).toBe(1);
    expect(spill.mostBytes).toBe(PACK_BYTES);
    const packs = store.packs();
    expect(packs.size).toBe(4);
    for (const p of packs.values()) expect(p.crc32).toBe(crc32(p.data));
    expectChunksIn(packs, await Promise.all(refs), chunks);
  });

  it('stops spilling when told, and still sends what was spilled', async () => {
    const { spill, store, uploader } = await spillingUploader(64 * MiB);
    const chunks = chunksOf('spill-stop', 7);
    const refs: Array<Promise<ChunkRef>> = [];
    await addEachOwned(uploader, chunks.slice(0, 5), refs);
    await refs[4];
    expect(spill.spilledPacks).toBe(1);
    uploader.spillTo(undefined);
    await addEachOwned(uploader, chunks.slice(5), refs);
    const sealingThird = watch(refs[6]!);
    await turn();
    expect(sealingThird.settled()).toBe(false);
    expect(spill.spilledPacks).toBe(1);

    store.open();
    await uploader.drain();
    const packs = store.packs();
    expect(packs.size).toBe(4);
    expectChunksIn(packs, await Promise.all(refs), chunks);
    expect(spill.waiting).toBe(0);
  });
});

describe('ChunkUploader when a put fails', () => {
  it('rejects drain with the failure, refuses further chunks, and cancel settles', async () => {
    const failure = new Error('S3 refused the pack (AccessDenied)');
    let puts = 0;
    const store: PackStore = {
      putPack: async () => {
        puts++;
        throw failure;
      },
    };
    const uploader = new ChunkUploader(store, new Map(), 2, { workers });
    const chunks = chunksOf('fail', 5);
    const added = [];
    for (const c of chunks) added.push(uploader.add(c).catch((error: unknown) => error));
    await expect(uploader.drain()).rejects.toBe(failure);
    expect(puts).toBeGreaterThanOrEqual(1);
    await expect(uploader.add(seededBytes('fail-after', 1000))).rejects.toBe(failure);
    await expect(uploader.cancel(new Error('the checkpoint failed'))).resolves.toBeUndefined();
    await Promise.all(added);
  });

  it('fails drain when a put fails with packs waiting in the spill', async () => {
    const { dir, spill, store, uploader } = await spillingUploader(64 * MiB);
    const refs: Array<Promise<ChunkRef>> = [];
    await addEachOwned(uploader, chunksOf('fail-spill', 5), refs);
    await refs[4];
    expect(spill.waiting).toBe(1);
    const failure = new Error('the connection to S3 was reset');
    const draining = uploader.drain();
    draining.catch(() => undefined);
    store.failOne(failure);
    await expect(draining).rejects.toBe(failure);
    // Nothing more went to the store; the spilled packs stay for discard.
    expect(store.calls).toHaveLength(1);
    expect(spill.waiting).toBeGreaterThanOrEqual(1);
    await expect(uploader.cancel(failure)).resolves.toBeUndefined();
    await spill.discard();
    expect(await packFiles(dir)).toEqual([]);
  });

  it('aborts the puts in flight on cancel, with the reason, and settles', async () => {
    const store = new GatedStore();
    const uploader = new ChunkUploader(store, new Map(), 2, { workers: new InlineWorkers().asPool(), encodingAhead: 16 });
    const refs = (await Promise.all(chunksOf('cancel', 7).map((c) => uploader.addOwned(Buffer.from(c))))).map((added) => added.ref);
    for (const r of refs) r.catch(() => undefined);
    await store.called(2);
    const reason = new Error('spot reclaim: giving up the checkpoint');
    await expect(uploader.cancel(reason)).resolves.toBeUndefined();
    expect(store.calls).toHaveLength(2);
    for (const call of store.calls) {
      expect(call.signal!.aborted).toBe(true);
      expect(call.signal!.reason).toBe(reason);
      expect(call.done).toBe(false);
    }
    await expect(uploader.drain()).rejects.toBe(reason);
  });
});
