// The uploader packs chunks as the workers encoded them: zstd where it pays, refs in chunk order, each chunk stored once, known ones not at all.
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { seededAcgtLines } from '../../test/support/seeded-text.ts';
import { type ChunkRef, storedLength } from '../store/manifest.ts';
import { PACK_BYTES } from './buffer-pool.ts';
import { chunkDigest } from './chunk-digest.ts';
import { decodeChunk, encodeChunk, WORTHWHILE_SAVING } from './chunk-encoding.ts';
import { ChunkUploader, type KnownChunks, type PackStore } from './chunk-uploader.ts';
import { type ChunkWorkers, ChunkWorkers as Pool, type EncodeResult } from './chunk-workers.ts';
import { CompressionPace } from './compression-pace.ts';

const MiB = 1 << 20;

function digestOf(data: Buffer): string {
  return chunkDigest(data);
}

/** Packs kept in memory, as S3 would keep them: a copy of the bytes and the CRC32 they were sent with. */
class MemoryStore implements PackStore {
  readonly packs = new Map<string, { data: Buffer; crc32: number }>();

  async putPack(id: string, parts: readonly Buffer[], checksum: number): Promise<void> {
    if (this.packs.has(id)) throw new Error(`pack ${id} was put twice`);
    this.packs.set(id, { data: Buffer.concat(parts), crc32: checksum });
  }

  /** The raw bytes of a chunk as a restore reads them: its stored bytes at its offset, decoded. */
  chunk(ref: ChunkRef): Buffer {
    const pack = this.packs.get(ref.pack);
    if (!pack) throw new Error(`no pack ${ref.pack}`);
    const stored = pack.data.subarray(ref.offset, ref.offset + storedLength(ref));
    return decodeChunk(stored, ref.encoding ?? 'raw', ref.bytes, `pack ${ref.pack} bytes ${ref.offset}+${storedLength(ref)}`);
  }

  storedBytes(): number {
    return [...this.packs.values()].reduce((sum, p) => sum + p.data.length, 0);
  }
}

/**
 * Workers on the main thread whose encodes complete when the test says, in the order it says: encodeChunk's
 * results, or the known answer for a known hash, as the real workers give.
 */
class GatedWorkers {
  readonly size = 2;
  private known = new Set<string>();
  readonly pending: Array<() => void> = [];

  setKnown(hashes: Iterable<string>): void {
    this.known = new Set(hashes);
  }

  encode(raw: Buffer, compress: boolean): Promise<EncodeResult> {
    const encoded = encodeChunk(raw, compress);
    const result: EncodeResult = this.known.has(encoded.digest)
      ? { digest: encoded.digest, bytes: raw.length, encoding: 'raw', stored: raw, known: true, raw, crc32: 0 }
      : { ...encoded, known: false, raw, crc32: crc32(encoded.stored) };
    return new Promise((resolve) => this.pending.push(() => resolve(result)));
  }

  asPool(): ChunkWorkers {
    return this as unknown as ChunkWorkers;
  }
}

const workers = new Pool(2);
afterAll(() => workers.close());

/** Feeds `chunks` through `addingTo` as a chunker would, then drains. */
async function uploadAll(uploader: ChunkUploader, chunks: Buffer[]): Promise<ChunkRef[]> {
  const refs: ChunkRef[] = [];
  const consume = uploader.addingTo(refs);
  for (const c of chunks) await consume(c);
  await uploader.drain();
  return refs;
}

describe('ChunkUploader with encoding', () => {
  it('stores compressible chunks as zstd, saying so in their refs, and incompressible ones raw', async () => {
    const store = new MemoryStore();
    const compressible = [0, 1, 2, 3].map((i) => seededAcgtLines(`uploader-acgt-${i}`, (512 << 10) + i * 1000));
    const random = [0, 1].map((i) => seededBytes(`uploader-random-${i}`, (256 << 10) + i * 333));
    const chunks = [compressible[0]!, random[0]!, compressible[1]!, compressible[2]!, random[1]!, compressible[3]!];
    const uploader = new ChunkUploader(store, new Map(), 2, { workers, adaptiveCompression: false });
    const refs = await uploadAll(uploader, chunks);

    expect(refs).toHaveLength(chunks.length);
    refs.forEach((ref, i) => {
      const chunk = chunks[i]!;
      expect(ref.digest).toBe(digestOf(chunk));
      expect(ref.bytes).toBe(chunk.length);
      if (compressible.includes(chunk)) {
        expect(ref.encoding).toBe('zstd');
        expect(ref.storedBytes).toBeLessThanOrEqual(chunk.length * (1 - WORTHWHILE_SAVING));
      } else {
        expect(ref.encoding).toBeUndefined();
        expect(ref.storedBytes).toBeUndefined();
      }
      // The pack's bytes at [offset, offset + stored) are the chunk as stored.
      expect(store.chunk(ref).equals(chunk)).toBe(true);
    });

    // One pack, its chunks back to back, sent with its CRC32.
    expect(store.packs.size).toBe(1);
    const [pack] = [...store.packs.values()];
    expect(pack!.crc32).toBe(crc32(pack!.data));
    const spans = refs.map((r) => [r.offset, r.offset + storedLength(r)] as const).sort((a, b) => a[0] - b[0]);
    expect(spans[0]![0]).toBe(0);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBe(spans[i - 1]![1]);
    expect(spans.at(-1)![1]).toBe(pack!.data.length);
  });

  it('stores every chunk raw when compression is off', async () => {
    const store = new MemoryStore();
    const chunks = [0, 1].map((i) => seededAcgtLines(`uploader-off-${i}`, 256 << 10));
    const refs = await uploadAll(new ChunkUploader(store, new Map(), 2, { workers, compress: false }), chunks);
    for (const ref of refs) expect(ref.encoding).toBeUndefined();
    expect(store.storedBytes()).toBe(512 << 10);
  });

  it('sets the refs of addingTo in chunk order though the encodes complete in reverse order', async () => {
    const store = new MemoryStore();
    const gated = new GatedWorkers();
    const chunks = [0, 1, 2, 3, 4].map((i) => (i % 2 ? seededBytes(`uploader-order-${i}`, 10_000 + i) : seededAcgtLines(`uploader-order-${i}`, 20_000 + i)));
    const uploader = new ChunkUploader(store, new Map(), 2, { workers: gated.asPool(), encodingAhead: 8 });
    const refs: ChunkRef[] = [];
    const consume = uploader.addingTo(refs);
    for (const c of chunks) await consume(c);
    expect(gated.pending).toHaveLength(5);
    for (const complete of gated.pending.splice(0).reverse()) complete();
    await uploader.drain();

    expect(refs.map((r) => r.digest)).toEqual(chunks.map(digestOf));
    // Packed as they completed: the last chunk first.
    expect(refs[4]!.offset).toBe(0);
    expect(refs[0]!.offset).toBeGreaterThan(refs[1]!.offset);
    for (const [i, ref] of refs.entries()) expect(store.chunk(ref).equals(chunks[i]!)).toBe(true);
  });

  it('sets the refs of addingTo in chunk order on the real workers, whatever order they finish in', async () => {
    const store = new MemoryStore();
    const chunks: Buffer[] = [];
    for (let i = 0; i < 24; i++) {
      const size = [MiB, 300, 64 << 10, 5][i % 4]!;
      chunks.push(i % 3 ? seededAcgtLines(`uploader-real-order-${i}`, size) : seededBytes(`uploader-real-order-${i}`, size));
    }
    const refs = await uploadAll(new ChunkUploader(store, new Map(), 2, { workers }), chunks);
    expect(refs.map((r) => r.digest)).toEqual(chunks.map(digestOf));
    for (const [i, ref] of refs.entries()) expect(store.chunk(ref).equals(chunks[i]!)).toBe(true);
  });

  it('stores a chunk that comes more than once in an upload once, and refers to it each time', async () => {
    const store = new MemoryStore();
    const a = seededAcgtLines('uploader-dup-a', 256 << 10);
    const b = seededBytes('uploader-dup-b', 100_000);
    const uploader = new ChunkUploader(store, new Map(), 2, { workers });
    const refs = await uploadAll(uploader, [a, b, Buffer.from(a), a, Buffer.from(b)]);
    expect(refs[2]).toEqual(refs[0]);
    expect(refs[3]).toEqual(refs[0]);
    expect(refs[4]).toEqual(refs[1]);
    expect(refs[0]).not.toEqual(refs[1]);
    const storedA = encodeChunk(a, true).stored.length;
    expect(store.storedBytes()).toBe(storedA + b.length);
    expect(uploader.transfer).toEqual({
      totalChunks: 5,
      totalBytes: 3 * a.length + 2 * b.length,
      uploadedChunks: 2,
      uploadedBytes: a.length + b.length,
      uploadedPacks: 1,
      storedBytes: storedA + b.length,
    });
  });

  it('does not upload a chunk S3 already has, and refers to where it is', async () => {
    const store = new MemoryStore();
    const old = seededAcgtLines('uploader-known', 256 << 10);
    const fresh = seededAcgtLines('uploader-fresh', 128 << 10);
    const knownRef: ChunkRef = {
      digest: digestOf(old),
      bytes: old.length,
      pack: 'c0ffee00c0ffee00c0ffee00c0ffee00',
      offset: 4096,
      encoding: 'zstd',
      storedBytes: 77_777,
    };
    const known: KnownChunks = new Map([[knownRef.digest, knownRef]]);
    const uploader = new ChunkUploader(store, known, 2, { workers });
    const refs = await uploadAll(uploader, [old, fresh, old]);
    expect(refs[0]).toEqual(knownRef);
    expect(refs[2]).toEqual(knownRef);
    expect(refs[0]).not.toBe(knownRef); // a copy: the uploader's refs are the caller's to change
    expect(store.packs.has(knownRef.pack)).toBe(false);
    expect(store.packs.size).toBe(1);
    expect(store.chunk(refs[1]!).equals(fresh)).toBe(true);
    const storedFresh = encodeChunk(fresh, true).stored.length;
    expect(store.storedBytes()).toBe(storedFresh);
    expect(uploader.transfer).toEqual({
      totalChunks: 3,
      totalBytes: 2 * old.length + fresh.length,
      uploadedChunks: 1,
      uploadedBytes: fresh.length,
      uploadedPacks: 1,
      storedBytes: storedFresh,
    });
  });

  it('counts raw and stored bytes over several packs, and the bytes sent', async () => {
    const store = new MemoryStore();
    // Nine incompressible MiB: eight fill one pack exactly, the ninth opens a second.
    const chunks = Array.from({ length: 9 }, (_, i) => seededBytes(`uploader-counts-${i}`, MiB));
    const uploader = new ChunkUploader(store, new Map(), 2, { workers });
    const refs = await uploadAll(uploader, chunks);
    expect(uploader.transfer).toEqual({
      totalChunks: 9,
      totalBytes: 9 * MiB,
      uploadedChunks: 9,
      uploadedBytes: 9 * MiB,
      uploadedPacks: 2,
      storedBytes: 9 * MiB,
    });
    expect(uploader.sentBytes).toBe(9 * MiB);
    expect([...store.packs.values()].map((p) => p.data.length).sort((a, b) => a - b)).toEqual([MiB, PACK_BYTES]);
    for (const p of store.packs.values()) expect(p.crc32).toBe(crc32(p.data));
    for (const [i, ref] of refs.entries()) expect(store.chunk(ref).equals(chunks[i]!)).toBe(true);
  });

  it('sends a chunk larger than a pack alone, at offset 0', async () => {
    const store = new MemoryStore();
    const small = [seededBytes('uploader-big-before', 3000), seededBytes('uploader-big-after', 5000)];
    const big = seededBytes('uploader-big', PACK_BYTES + 1);
    const uploader = new ChunkUploader(store, new Map(), 2, { workers });
    const refs = await uploadAll(uploader, [small[0]!, big, small[1]!]);
    expect(refs[1]!.offset).toBe(0);
    expect(store.packs.get(refs[1]!.pack)!.data.length).toBe(PACK_BYTES + 1);
    expect(refs[0]!.pack).not.toBe(refs[1]!.pack);
    expect(refs[2]!.pack).not.toBe(refs[1]!.pack);
    expect(store.chunk(refs[1]!).equals(big)).toBe(true);
    for (const p of store.packs.values()) expect(p.crc32).toBe(crc32(p.data));
    expect(uploader.transfer.storedBytes).toBe(PACK_BYTES + 1 + 8000);
  });

  it('copies the bytes of add: the caller may reuse its buffer once add has its promise', async () => {
    const store = new MemoryStore();
    const uploader = new ChunkUploader(store, new Map(), 2, { workers });
    const reused = seededAcgtLines('uploader-reuse-1', 64 << 10);
    const first = uploader.add(reused);
    seededAcgtLines('uploader-reuse-2', 64 << 10).copy(reused);
    const second = uploader.add(reused);
    const [a, b] = await Promise.all([first, second]);
    await uploader.drain();
    expect(store.chunk(a).equals(seededAcgtLines('uploader-reuse-1', 64 << 10))).toBe(true);
    expect(store.chunk(b).equals(seededAcgtLines('uploader-reuse-2', 64 << 10))).toBe(true);
  });

  it('hands the buffer of addOwned back to its recycler, whole', async () => {
    const store = new MemoryStore();
    const uploader = new ChunkUploader(store, new Map(), 2, { workers });
    const memory = Buffer.allocUnsafeSlow(2 * MiB);
    seededAcgtLines('uploader-owned', 2 * MiB).copy(memory);
    const recycled: Buffer[] = [];
    const { ref } = await uploader.addOwned(memory.subarray(0, MiB), (b) => recycled.push(b));
    const r = await ref;
    await uploader.drain();
    expect(recycled).toHaveLength(1);
    expect(recycled[0]!.buffer.byteLength).toBe(2 * MiB);
    expect(recycled[0]!.length).toBe(MiB);
    expect(store.chunk(r).equals(seededAcgtLines('uploader-owned', 2 * MiB).subarray(0, MiB))).toBe(true);
  });
});

describe('ChunkUploader choosing whether to compress', () => {
  it('keeps a chunk raw when it had to wait for the workers while uploads were free, and compresses while the workers keep up', async () => {
    const gated = new GatedWorkers();
    const store = new MemoryStore();
    const uploader = new ChunkUploader(store, new Map(), 8, { workers: gated.asPool(), encodingAhead: 2 });
    const chunks = [0, 1, 2].map((i) => seededAcgtLines(`adaptive-${i}`, 64 << 10));
    const first = await uploader.addOwned(Buffer.from(chunks[0]!));
    const second = await uploader.addOwned(Buffer.from(chunks[1]!));
    // Both workers busy: the third waits for one, with every upload slot free: the cores are the limit.
    const third = uploader.addOwned(Buffer.from(chunks[2]!));
    gated.pending.shift()!();
    await first.ref;
    gated.pending.shift()!();
    await second.ref;
    const { ref } = await third;
    gated.pending.shift()!();
    const refs = await Promise.all([first.ref, second.ref, ref]);
    await uploader.drain();
    expect(uploader.compressionChoices).toEqual({ compressed: 2, raw: 1 });
    expect(refs.map((r) => r.encoding)).toEqual(['zstd', 'zstd', undefined]);
    for (const [i, r] of refs.entries()) expect(store.chunk(r).equals(chunks[i]!)).toBe(true);
  });

  it("starts from the rates a checkpoint before it measured when given the attempt's pace, and from none without it", async () => {
    // The last checkpoint measured zstd at 10 MB/s per worker against 100 MB/s per PUT: compressing would hold
    // the uploads back, so the next checkpoint keeps its chunks raw from its first one.
    const slowZstd = new CompressionPace();
    for (let i = 0; i < 3; i++) {
      slowZstd.noteCompressed(10_000, 1);
      slowZstd.notePut(100_000, 1);
    }
    const text = seededAcgtLines('carried-pace', 64 << 10);
    const carried = new ChunkUploader(new MemoryStore(), new Map(), 4, { workers, pace: slowZstd });
    const fresh = new ChunkUploader(new MemoryStore(), new Map(), 4, { workers });
    const [carriedRefs, freshRefs] = [await uploadAll(carried, [Buffer.from(text)]), await uploadAll(fresh, [Buffer.from(text)])];
    expect(carried.pace).toBe(slowZstd);
    expect(carried.compressionChoices).toEqual({ compressed: 0, raw: 1 });
    expect(carriedRefs[0]!.encoding).toBeUndefined();
    expect(fresh.compressionChoices).toEqual({ compressed: 1, raw: 0 });
    expect(freshRefs[0]!.encoding).toBe('zstd');
  });
});
