// The chunk worker pool: encodes and decodes on worker threads as encodeChunk does, moves buffers without copies, and refuses damaged chunks.
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { seededAcgtLines } from '../../test/support/seeded-text.ts';
import { chunkDigest } from './chunk-digest.ts';
import { encodeChunk } from './chunk-encoding.ts';
import { ChunkWorkers } from './chunk-workers.ts';

const MiB = 1 << 20;

/** A copy in an ArrayBuffer of its own, which `encode(..., true)` may take. */
function owned(data: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(data.length);
  data.copy(copy);
  return copy;
}

/** Chunks of every kind: compressible, incompressible, tiny, empty, and views into a larger buffer. */
function mixedChunks(): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < 6; i++) chunks.push(seededAcgtLines(`workers-acgt-${i}`, (256 << 10) + i * 4099));
  for (let i = 0; i < 6; i++) chunks.push(seededBytes(`workers-random-${i}`, (128 << 10) + i * 777));
  chunks.push(Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(511, 7), Buffer.alloc(4096, 9));
  const big = seededAcgtLines('workers-shared', 512 << 10);
  chunks.push(big.subarray(1000, 200_000), big.subarray(300_000));
  return chunks;
}

const pool = new ChunkWorkers(2);
afterAll(() => pool.close());

describe('ChunkWorkers', () => {
  it('refuses a size that is not a whole number of workers from 1', () => {
    expect(() => new ChunkWorkers(0)).toThrow('a chunk worker pool needs a whole number of workers >= 1, not 0');
    expect(() => new ChunkWorkers(1.5)).toThrow('not 1.5');
    expect(() => new ChunkWorkers(Number.NaN)).toThrow('not NaN');
  });

  it('encodes many chunks at once as encodeChunk does, and decodes them back', async () => {
    const chunks = mixedChunks();
    // Compared with copies: whether the pool leaves the callers' buffers alone is a test of its own below.
    const pristine = chunks.map((c) => Buffer.from(c));
    const expected = pristine.map((c) => encodeChunk(c, true));
    const results = await Promise.all(chunks.map((c) => pool.encode(c, true)));
    results.forEach((r, i) => {
      const want = expected[i]!;
      expect({ i, digest: r.digest, bytes: r.bytes, encoding: r.encoding, known: r.known }).toEqual({
        i,
        digest: want.digest,
        bytes: want.bytes,
        encoding: want.encoding,
        known: false,
      });
      expect(r.stored.equals(want.stored)).toBe(true);
      expect(r.raw.equals(pristine[i]!)).toBe(true);
      if (r.encoding === 'raw') expect(r.stored === r.raw).toBe(true);
    });
    expect(results.filter((r) => r.encoding === 'zstd').length).toBeGreaterThanOrEqual(8);
    expect(results.filter((r) => r.encoding === 'raw').length).toBeGreaterThanOrEqual(8);

    // The compressed ones decode back (raw ones have a test of their own below).
    const zstd = results.map((r, i) => ({ r, i })).filter(({ r }) => r.encoding === 'zstd');
    const decoded = await Promise.all(zstd.map(({ r, i }) => pool.decode(r.stored, r.encoding, r.bytes, r.digest, `chunk ${i}`)));
    for (const [n, d] of decoded.entries()) expect({ i: zstd[n]!.i, same: d.equals(pristine[zstd[n]!.i]!) }).toEqual({ i: zstd[n]!.i, same: true });
  });

  it('encodes without compressing when told not to', async () => {
    const raw = seededAcgtLines('workers-no-compress', 256 << 10);
    const result = await pool.encode(owned(raw), false, true);
    expect(result.encoding).toBe('raw');
    expect(result.digest).toBe(chunkDigest(raw));
    expect(result.stored.equals(raw)).toBe(true);
  });

  it('takes an owned buffer and hands the same memory back: its whole ArrayBuffer, at the same place', async () => {
    const memory = Buffer.allocUnsafeSlow(2 * MiB);
    seededAcgtLines('workers-owned', 2 * MiB).copy(memory);
    const view = memory.subarray(4096, 4096 + MiB);
    const want = encodeChunk(Buffer.from(view), true);
    const pending = pool.encode(view, true, true);
    // Transferred: the caller's views are detached until the result hands the memory back.
    expect(memory.buffer.byteLength).toBe(0);
    const result = await pending;
    expect(result.raw.buffer.byteLength).toBe(2 * MiB);
    expect(result.raw.byteOffset).toBe(4096);
    expect(result.raw.length).toBe(MiB);
    expect(result.encoding).toBe('zstd');
    expect(result.digest).toBe(want.digest);
    expect(result.stored.equals(want.stored)).toBe(true);
    expect(Buffer.from(result.raw.buffer).equals(seededAcgtLines('workers-owned', 2 * MiB))).toBe(true);
  });

  it('hands an owned incompressible buffer back as both raw and stored', async () => {
    const raw = owned(seededBytes('workers-owned-random', MiB));
    const result = await pool.encode(raw, true, true);
    expect(result.encoding).toBe('raw');
    expect(result.stored === result.raw).toBe(true);
    expect(result.raw.buffer.byteLength).toBe(MiB);
    expect(result.raw.equals(seededBytes('workers-owned-random', MiB))).toBe(true);
  });

  it('leaves a view into a larger buffer usable when it is not owned', async () => {
    const memory = seededAcgtLines('workers-not-owned-view', 2 * MiB);
    const view = memory.subarray(100, 100 + MiB);
    const result = await pool.encode(view, true);
    expect(memory.length).toBe(2 * MiB);
    expect(view.length).toBe(MiB);
    expect(memory.equals(seededAcgtLines('workers-not-owned-view', 2 * MiB))).toBe(true);
    expect(result.raw.equals(view)).toBe(true);
  });

  it('leaves a buffer that owns its whole ArrayBuffer usable when it is not owned', async () => {
    // seededBytes's result is one Buffer.concat allocation of its own, as most large caller buffers are.
    const raw = seededBytes('workers-not-owned-whole', MiB);
    expect(raw.byteOffset === 0 && raw.buffer.byteLength === MiB).toBe(true);
    const result = await pool.encode(raw, true);
    expect(result.digest).toBe(chunkDigest(seededBytes('workers-not-owned-whole', MiB)));
    expect(raw.length).toBe(MiB);
    expect(raw.equals(seededBytes('workers-not-owned-whole', MiB))).toBe(true);
  });

  it("leaves the caller's stored bytes usable after a decode", async () => {
    const raw = seededAcgtLines('workers-decode-keeps', MiB);
    const { stored, digest, bytes } = encodeChunk(raw, true);
    const mine = owned(stored);
    const decoded = await pool.decode(mine, 'zstd', bytes, digest, 'chunk kept');
    expect(decoded.equals(raw)).toBe(true);
    expect(mine.length).toBe(stored.length);
    expect(mine.equals(stored)).toBe(true);
  });

  it('hands a known chunk back hashed, raw and uncompressed, and forgets it when told', async () => {
    const raw = seededAcgtLines('workers-known', 256 << 10);
    const digest = chunkDigest(raw);
    const other = seededAcgtLines('workers-not-known', 256 << 10);
    // Workers started before setKnown learn the hashes too.
    await Promise.all([pool.encode(owned(other), true, true), pool.encode(owned(other), true, true)]);
    pool.setKnown([`blake3:${'0'.repeat(64)}`, digest]);
    const results = await Promise.all([pool.encode(owned(raw), true, true), pool.encode(owned(raw), true, true), pool.encode(owned(other), true, true)]);
    for (const r of results.slice(0, 2)) {
      expect(r).toMatchObject({ digest, bytes: raw.length, known: true, encoding: 'raw' });
      expect(r.stored.equals(raw)).toBe(true);
    }
    expect(results[2]).toMatchObject({ known: false, encoding: 'zstd' });

    pool.setKnown([]);
    const again = await Promise.all([pool.encode(owned(raw), true, true), pool.encode(owned(raw), true, true)]);
    for (const r of again) expect(r).toMatchObject({ digest, known: false, encoding: 'zstd' });
  });

  it('tells workers it starts later the known hashes set before', async () => {
    const fresh = new ChunkWorkers(2);
    try {
      const raw = seededAcgtLines('workers-known-early', 256 << 10);
      fresh.setKnown([chunkDigest(raw)]);
      const results = await Promise.all([0, 1, 2].map(() => fresh.encode(owned(raw), true, true)));
      for (const r of results) expect(r).toMatchObject({ known: true, encoding: 'raw' });
    } finally {
      await fresh.close();
    }
  });

  it('refuses raw chunks of a wrong length', async () => {
    const raw = seededBytes('workers-decode-raw-short', 64 << 10);
    await expect(pool.decode(owned(raw), 'raw', raw.length + 1, chunkDigest(raw), 'short raw chunk')).rejects.toThrow(
      `short raw chunk: ${raw.length} bytes stored raw, the manifest says ${raw.length + 1}`,
    );
  });

  it('decodes raw chunks checked against their hash', async () => {
    const raws = [0, 1, 2, 3].map((i) => seededBytes(`workers-decode-raw-${i}`, (64 << 10) + i));
    const decoded = await Promise.all(raws.map((raw, i) => pool.decode(owned(raw), 'raw', raw.length, chunkDigest(raw), `raw chunk ${i}`)));
    for (const [i, d] of decoded.entries()) expect(d.equals(raws[i]!)).toBe(true);
  });

  it('rejects a damaged raw chunk by its hash', async () => {
    const raw = seededBytes('workers-decode-raw-damaged', 64 << 10);
    const damaged = owned(raw);
    damaged[100] = damaged[100]! ^ 1;
    await expect(pool.decode(damaged, 'raw', raw.length, chunkDigest(raw), 'raw chunk d')).rejects.toThrow(
      /^raw chunk d: digest blake3:[0-9a-f]{64} \(65536 bytes\) does not match the manifest's blake3:[0-9a-f]{64}$/,
    );
  });

  it('rejects a damaged zstd frame with a message naming the chunk', async () => {
    const raw = seededAcgtLines('workers-damaged', 256 << 10);
    const { stored, digest, bytes } = encodeChunk(raw, true);
    const header = Buffer.from(stored);
    header[0] = header[0]! ^ 0xff;
    await expect(pool.decode(header, 'zstd', bytes, digest, 'pack p9 bytes 0+42')).rejects.toThrow(
      /^pack p9 bytes 0\+42: its zstd frame of \d+ bytes cannot be decompressed/,
    );
    // A flipped byte inside the frame may still decompress, to other bytes: the hash refuses them.
    const inside = Buffer.from(stored);
    inside[inside.length >> 1] = inside[inside.length >> 1]! ^ 0x55;
    await expect(pool.decode(inside, 'zstd', bytes, digest, 'pack p9 bytes 42+7')).rejects.toThrow(/^pack p9 bytes 42\+7: /);
  });

  it("rejects a chunk whose bytes are not those of its digest, by the digest's own algorithm", async () => {
    const raw = seededAcgtLines('workers-wrong-hash', 256 << 10);
    const { stored, bytes } = encodeChunk(raw, true);
    const wrong = `blake3:${'a'.repeat(64)}`;
    await expect(pool.decode(stored, 'zstd', bytes, wrong, 'chunk w')).rejects.toThrow(
      `chunk w: digest ${chunkDigest(raw)} (${raw.length} bytes) does not match the manifest's ${wrong}`,
    );
    await expect(pool.decode(owned(raw), 'raw', raw.length, wrong, 'chunk v')).rejects.toThrow(
      /^chunk v: digest blake3:[0-9a-f]{64} \(\d+ bytes\) does not match the manifest's blake3:a{64}/,
    );
    // A chunk an agent without BLAKE3 named by SHA-256 is checked by SHA-256.
    const bySha256 = chunkDigest(raw, 'sha256');
    expect((await pool.decode(owned(raw), 'raw', raw.length, bySha256, 'chunk s')).equals(raw)).toBe(true);
    await expect(pool.decode(owned(raw), 'raw', raw.length, `sha256:${'a'.repeat(64)}`, 'chunk t')).rejects.toThrow(
      `chunk t: digest ${bySha256} (${raw.length} bytes) does not match the manifest's sha256:${'a'.repeat(64)}`,
    );
  });

  it('writes a checked chunk at every place it goes from the worker, hands the stored buffer back, and writes nothing of a damaged one', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'workers-write-'));
    const file = await open(path.join(dir, 'image'), 'w+');
    try {
      const raw = seededAcgtLines('workers-write', 96 << 10);
      const encoded = encodeChunk(raw, true);
      expect(encoded.encoding).toBe('zstd');
      const stored = owned(encoded.stored);
      const back = await pool.decodeAndWrite(stored, 'zstd', raw.length, encoded.digest, 'chunk a', [
        { fd: file.fd, position: 0 },
        { fd: file.fd, position: raw.length + 100 },
      ]);
      // The same bytes come back, for the next chunk to be gathered in.
      expect(back.equals(encoded.stored)).toBe(true);
      const written = await readFile(path.join(dir, 'image'));
      expect(written.subarray(0, raw.length).equals(raw)).toBe(true);
      expect(written.subarray(raw.length, raw.length + 100).equals(Buffer.alloc(100))).toBe(true);
      expect(written.subarray(raw.length + 100).equals(raw)).toBe(true);

      const damaged = owned(raw);
      damaged[5] = damaged[5]! ^ 1;
      await expect(pool.decodeAndWrite(damaged, 'raw', raw.length, chunkDigest(raw), 'chunk b', [{ fd: file.fd, position: 3 * raw.length }])).rejects.toThrow(
        /^chunk b: digest blake3:[0-9a-f]{64} .*does not match the manifest's blake3:/,
      );
      expect((await file.stat()).size).toBe(2 * raw.length + 100);
    } finally {
      await file.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops its workers on close, and the workers still answer the next jobs after a failure', async () => {
    const own = new ChunkWorkers(2);
    const terminate = vi.spyOn(Worker.prototype, 'terminate');
    try {
      const raw = seededAcgtLines('workers-close', 64 << 10);
      await expect(own.decode(owned(raw), 'zstd', raw.length, chunkDigest(raw), 'not zstd')).rejects.toThrow(/^not zstd: /);
      const results = await Promise.all([0, 1, 2].map(() => own.encode(owned(raw), true, true)));
      expect(results.map((r) => r.digest)).toEqual([chunkDigest(raw), chunkDigest(raw), chunkDigest(raw)]);
      await own.close();
      // Two workers were started (three jobs at once on a pool of two), and both were terminated and have exited.
      expect(terminate).toHaveBeenCalledTimes(2);
      const exits = await Promise.all(terminate.mock.results.map((r) => r.value as Promise<number>));
      expect(exits).toHaveLength(2);
      await own.close(); // twice is harmless
      expect(terminate).toHaveBeenCalledTimes(2);
    } finally {
      terminate.mockRestore();
      await own.close();
    }
  });
});
