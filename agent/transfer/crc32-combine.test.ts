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
});
