// How a chunk is stored: zstd when that saves at least 1/8, raw otherwise, identified by the digest of its raw bytes, and decoded back or refused.
import { describe, expect, it } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { seededAcgtLines } from '../../test/support/seeded-text.ts';
import { chunkDigest } from './chunk-digest.ts';
import { decodeChunk, encodeChunk, encodeKnownHash, mayCompress, WORTHWHILE_SAVING } from './chunk-encoding.ts';

const MiB = 1 << 20;

describe('encodeChunk', () => {
  it('stores compressible bytes as one zstd frame that saves at least 1/8 and decodes back to them', () => {
    const raw = seededAcgtLines('encoding-acgt', MiB);
    const encoded = encodeChunk(raw, true);
    expect(encoded.encoding).toBe('zstd');
    expect(encoded.bytes).toBe(MiB);
    expect(encoded.stored.length).toBeLessThanOrEqual(MiB * (1 - WORTHWHILE_SAVING));
    // A zstd frame starts with its magic number, 0xFD2FB528 little-endian.
    expect(encoded.stored.readUInt32LE(0)).toBe(0xfd2fb528);
    expect(decodeChunk(encoded.stored, 'zstd', MiB, 'chunk a').equals(raw)).toBe(true);
  });

  it('stores incompressible bytes raw, as the same buffer, and mayCompress tells so from its samples', () => {
    const raw = seededBytes('encoding-random', MiB);
    expect(mayCompress(raw)).toBe(false);
    const encoded = encodeChunk(raw, true);
    expect(encoded.encoding).toBe('raw');
    expect(encoded.stored === raw).toBe(true);
    expect(encoded.bytes).toBe(MiB);
    expect(decodeChunk(encoded.stored, 'raw', MiB, 'chunk b') === raw).toBe(true);
  });

  it('says compressible bytes may compress, and does not judge chunks too small to sample', () => {
    expect(mayCompress(seededAcgtLines('encoding-may', MiB))).toBe(true);
    // Under four samples' worth, mayCompress leaves the judgment to the compression itself.
    const small = seededBytes('encoding-small-random', 16 << 10);
    expect(mayCompress(small.subarray(0, (16 << 10) - 1))).toBe(true);
    expect(encodeChunk(small.subarray(0, (16 << 10) - 1), true).encoding).toBe('raw');
  });

  it('compresses a chunk whose start is random when the rest saves enough', () => {
    const raw = Buffer.concat([seededBytes('encoding-head', 16 << 10), seededAcgtLines('encoding-tail', MiB - (16 << 10))]);
    expect(mayCompress(raw)).toBe(true);
    const encoded = encodeChunk(raw, true);
    expect(encoded.encoding).toBe('zstd');
    expect(decodeChunk(encoded.stored, 'zstd', raw.length, 'chunk c').equals(raw)).toBe(true);
  });

  it('keeps a chunk raw when it saves less than 1/8, even if it compresses a little', () => {
    // 15/16 random and 1/16 zeros saves about 1/16: not worth a decompression.
    const raw = Buffer.concat([seededBytes('encoding-mostly-random', MiB - (64 << 10)), Buffer.alloc(64 << 10)]);
    const encoded = encodeChunk(raw, true);
    expect(encoded.encoding).toBe('raw');
    expect(encoded.stored === raw).toBe(true);
  });

  it('never compresses when told not to', () => {
    const raw = seededAcgtLines('encoding-off', MiB);
    const encoded = encodeChunk(raw, false);
    expect(encoded.encoding).toBe('raw');
    expect(encoded.stored === raw).toBe(true);
  });

  it('keeps chunks under 512 bytes raw, and compresses one of 512 that pays', () => {
    const empty = encodeChunk(Buffer.alloc(0), true);
    expect(empty).toMatchObject({ encoding: 'raw', bytes: 0, digest: 'blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262' });
    expect(decodeChunk(empty.stored, 'raw', 0, 'empty chunk').length).toBe(0);

    const one = encodeChunk(Buffer.from([0x41]), true);
    expect(one).toMatchObject({ encoding: 'raw', bytes: 1, digest: chunkDigest(Buffer.from([0x41])) });

    const zeros511 = encodeChunk(Buffer.alloc(511), true);
    expect(zeros511.encoding).toBe('raw');
    expect(zeros511.stored.length).toBe(511);

    const zeros512 = encodeChunk(Buffer.alloc(512), true);
    expect(zeros512.encoding).toBe('zstd');
    expect(zeros512.stored.length).toBeLessThan(64);
    expect(decodeChunk(zeros512.stored, 'zstd', 512, 'chunk d').equals(Buffer.alloc(512))).toBe(true);
  });

  it('identifies a chunk by the digest of its raw bytes, whatever its encoding', () => {
    const compressible = seededAcgtLines('encoding-identity', 256 << 10);
    const zstd = encodeChunk(compressible, true);
    const raw = encodeChunk(compressible, false);
    expect(zstd.encoding).toBe('zstd');
    expect(raw.encoding).toBe('raw');
    expect(zstd.digest).toBe(chunkDigest(compressible));
    expect(raw.digest).toBe(zstd.digest);
    expect(zstd.digest).not.toBe(chunkDigest(zstd.stored));

    const random = seededBytes('encoding-identity-random', 256 << 10);
    expect(encodeChunk(random, true).digest).toBe(chunkDigest(random));
  });

  it('takes the hash it is given, and encodes the bytes as encodeChunk does', () => {
    const raw = seededAcgtLines('encoding-known-hash', 128 << 10);
    const given = encodeKnownHash(raw, `blake3:${'f'.repeat(64)}`, true);
    const computed = encodeChunk(raw, true);
    expect(given.digest).toBe(`blake3:${'f'.repeat(64)}`);
    expect(given.encoding).toBe(computed.encoding);
    expect(given.stored.equals(computed.stored)).toBe(true);
  });
});

describe('decodeChunk', () => {
  const raw = seededAcgtLines('decoding', 256 << 10);
  const { stored } = encodeChunk(raw, true);

  it('refuses a zstd frame whose header is damaged, naming the chunk', () => {
    const damaged = Buffer.from(stored);
    damaged[0] = damaged[0]! ^ 0xff;
    expect(() => decodeChunk(damaged, 'zstd', raw.length, 'pack p1 bytes 0+123')).toThrow(
      new RegExp(`^pack p1 bytes 0\\+123: its zstd frame of ${stored.length} bytes cannot be decompressed \\(.+\\)$`),
    );
  });

  it('refuses a truncated zstd frame, naming the chunk and both lengths', () => {
    expect(() => decodeChunk(stored.subarray(0, stored.length - 100), 'zstd', raw.length, 'chunk t')).toThrow(/^chunk t: /);
    expect(() => decodeChunk(Buffer.alloc(0), 'zstd', raw.length, 'chunk e')).toThrow(/^chunk e: /);
  });

  it('refuses a zstd frame of another length than the manifest says, shorter or longer', () => {
    expect(() => decodeChunk(stored, 'zstd', raw.length + 1, 'chunk s')).toThrow(
      `chunk s: decompresses to ${raw.length} bytes, the manifest says ${raw.length + 1}`,
    );
    expect(() => decodeChunk(stored, 'zstd', raw.length - 1, 'chunk l')).toThrow(/^chunk l: /);
    expect(() => decodeChunk(stored, 'zstd', 100, 'chunk m')).toThrow(/^chunk m: /);
  });

  it('refuses raw bytes of a wrong length, naming the chunk and both lengths', () => {
    expect(() => decodeChunk(raw, 'raw', raw.length + 7, 'pack p2 bytes 10+20')).toThrow(
      `pack p2 bytes 10+20: ${raw.length} bytes stored raw, the manifest says ${raw.length + 7}`,
    );
    expect(() => decodeChunk(raw.subarray(1), 'raw', raw.length, 'chunk r')).toThrow(
      `chunk r: ${raw.length - 1} bytes stored raw, the manifest says ${raw.length}`,
    );
  });
});
