import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { crc32Combine } from './crc32-combine.ts';

describe('crc32Combine', () => {
  it('gives the CRC-32 of the concatenation, for lengths from 0 to past 4 GiB worth of doublings', () => {
    for (const [a, b] of [
      [0, 0],
      [0, 1],
      [1, 0],
      [3, 5],
      [4096, 1 << 20],
      [1 << 20, 12345],
    ] as const) {
      const x = seededBytes(`crc-a-${a}`, a);
      const y = seededBytes(`crc-b-${b}`, b);
      expect(crc32Combine(crc32(x), crc32(y), y.length)).toBe(crc32(Buffer.concat([x, y])));
    }
  });

  it('folds a pack from its chunks in order, starting from the empty string', () => {
    const chunks = Array.from({ length: 9 }, (_, i) => seededBytes(`crc-chunk-${i}`, 1000 + i * 777));
    const folded = chunks.reduce((crc, c) => crc32Combine(crc, crc32(c), c.length), 0);
    expect(folded).toBe(crc32(Buffer.concat(chunks)));
  });

  it('is associative for lengths past 2^32 bits, where the powers of x wrap around', () => {
    // No buffer of gigabytes is needed: combining A with B then C must equal A with (B then C), at any lengths.
    const [a, b, c] = [0x1234abcd, 0x9e3779b9, 0x7f4a7c15];
    for (const [lengthB, lengthC] of [
      [2 ** 29, 1],
      [2 ** 32 + 5, 2 ** 31 - 1],
      [3 * 2 ** 40 + 17, 2 ** 33],
    ] as const) {
      const left = crc32Combine(crc32Combine(a, b, lengthB), c, lengthC);
      const right = crc32Combine(a, crc32Combine(b, c, lengthC), lengthB + lengthC);
      expect(left).toBe(right);
    }
  });
});
