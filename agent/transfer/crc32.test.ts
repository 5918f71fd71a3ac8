// The pack CRC-32: the native binding's value is zlib's for every length and alignment, and the check value of the standard.
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { crc32, crc32Implementation } from './crc32.ts';

describe('crc32', () => {
  it('uses the native binding in a checkout, whose binding is installed', () => {
    expect(crc32Implementation()).toMatch(/^native \(/);
  });

  it('gives the CRC-32/ISO-HDLC check value of "123456789"', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.alloc(0))).toBe(0);
  });

  it("is zlib's CRC-32 at every length up to 300 bytes, every offset, and for a whole 1 MiB chunk", () => {
    const data = seededBytes('crc32-native', (1 << 20) + 64);
    for (let offset = 0; offset < 16; offset++) {
      for (let length = 0; length <= 300; length++) {
        const view = data.subarray(offset, offset + length);
        expect(crc32(view)).toBe(zlibCrc32(view) >>> 0);
      }
    }
    const chunk = data.subarray(7, 7 + (1 << 20));
    expect(crc32(chunk)).toBe(zlibCrc32(chunk) >>> 0);
  });
});
