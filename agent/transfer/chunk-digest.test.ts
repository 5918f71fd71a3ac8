// Chunk digests: BLAKE3 and SHA-256 against published test vectors, written algorithm:hex, and refused when they name no known algorithm.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { blake3Unavailable, CHUNK_DIGEST_PATTERN, cannotCompute, chunkDigest, digestAlgorithm, preferredChunkDigest } from './chunk-digest.ts';

describe('chunkDigest', () => {
  it('is BLAKE3 in a checkout, whose binding is installed', () => {
    expect(blake3Unavailable()).toBeUndefined();
    expect(preferredChunkDigest()).toBe('blake3');
  });

  it('computes BLAKE3 as its specification publishes it', () => {
    // The BLAKE3 paper's and reference implementation's digests of "" and "abc".
    expect(chunkDigest(Buffer.alloc(0))).toBe('blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262');
    expect(chunkDigest(Buffer.from('abc'))).toBe('blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
  });

  it('computes SHA-256 when asked, as Node does', () => {
    const data = seededBytes('chunk-digest-sha256', 1 << 20);
    expect(chunkDigest(data, 'sha256')).toBe(`sha256:${createHash('sha256').update(data).digest('hex')}`);
  });

  it('gives a 1 MiB chunk a digest that changes with any one byte, and the same digest from a copy in another buffer', () => {
    const data = seededBytes('chunk-digest-flip', 1 << 20);
    const digest = chunkDigest(data);
    expect(digest).toMatch(CHUNK_DIGEST_PATTERN);
    expect(chunkDigest(Buffer.from(data))).toBe(digest);
    // A view into a larger buffer hashes only its own bytes.
    const inside = Buffer.alloc(data.length + 64, 7);
    data.copy(inside, 32);
    expect(chunkDigest(inside.subarray(32, 32 + data.length))).toBe(digest);
    data[data.length - 1]! ^= 1;
    expect(chunkDigest(data)).not.toBe(digest);
  });
});

describe('digestAlgorithm', () => {
  it('reads the algorithm a digest names, and refuses one it does not know, naming it', () => {
    expect(digestAlgorithm(`blake3:${'a'.repeat(64)}`)).toBe('blake3');
    expect(digestAlgorithm(`sha256:${'a'.repeat(64)}`)).toBe('sha256');
    expect(() => digestAlgorithm('a'.repeat(64))).toThrow(`chunk digest "${'a'.repeat(64)}" names no known algorithm (blake3 or sha256)`);
    expect(() => digestAlgorithm(`md5:${'a'.repeat(32)}`)).toThrow(/names no known algorithm/);
  });

  it('says this process can check both kinds', () => {
    expect(cannotCompute('blake3')).toBeUndefined();
    expect(cannotCompute('sha256')).toBeUndefined();
  });
});

describe('CHUNK_DIGEST_PATTERN', () => {
  it('takes 64 lower-case hex digits after a known algorithm, and nothing else', () => {
    expect(CHUNK_DIGEST_PATTERN.test(`blake3:${'0'.repeat(64)}`)).toBe(true);
    expect(CHUNK_DIGEST_PATTERN.test(`sha256:${'f'.repeat(64)}`)).toBe(true);
    for (const bad of ['0'.repeat(64), `blake3:${'0'.repeat(63)}`, `blake3:${'A'.repeat(64)}`, `sha512:${'0'.repeat(64)}`, `blake3:${'0'.repeat(64)} `]) {
      expect(CHUNK_DIGEST_PATTERN.test(bad), bad).toBe(false);
    }
  });
});
