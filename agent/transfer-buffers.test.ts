import { describe, expect, it } from 'vitest';
import { PACK_BYTES, releaseTransferBuffer, takeTransferBuffer } from './transfer-buffers.ts';

describe('transfer buffers', () => {
  it('hands back a released buffer instead of allocating another', () => {
    const first = takeTransferBuffer();
    expect(first.length).toBe(PACK_BYTES);
    releaseTransferBuffer(first);
    releaseTransferBuffer(first); // twice is harmless
    // Identity is compared as a boolean: matchers on two 8 MiB buffers compare their bytes one by one.
    expect(takeTransferBuffer() === first).toBe(true);
    expect(takeTransferBuffer() === first).toBe(false);
  });

  it('keeps as many spares as were ever out at once, and never a buffer of another size', () => {
    const taken = Array.from({ length: 6 }, takeTransferBuffer);
    for (const b of taken) releaseTransferBuffer(b);
    releaseTransferBuffer(Buffer.alloc(10));
    const again = Array.from({ length: 7 }, takeTransferBuffer);
    expect(again.filter((b) => taken.includes(b))).toHaveLength(6);
    expect(again.every((b) => b.length === PACK_BYTES)).toBe(true);
  });
});
