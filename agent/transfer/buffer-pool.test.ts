import { describe, expect, it } from 'vitest';
import { WINDOW_BYTES } from '../checkpoint/page-stream-parser.ts';
import { BufferPool, chunkBuffers, PACK_BYTES } from './buffer-pool.ts';

describe('BufferPool', () => {
  it('hands back a released buffer instead of allocating another', () => {
    const pool = new BufferPool(PACK_BYTES);
    const first = pool.take();
    expect(first.length).toBe(PACK_BYTES);
    pool.release(first);
    pool.release(first); // twice is harmless
    // Identity is compared as a boolean: matchers on two 8 MiB buffers compare their bytes one by one.
    expect(pool.take() === first).toBe(true);
    expect(pool.take() === first).toBe(false);
  });

  it('takes back the whole buffer from any view of it, once', () => {
    const pool = new BufferPool(1024);
    const [first, second] = [pool.take(), pool.take()];
    // A part of it, and a new object over its memory (as one that came back from a worker thread): once only.
    pool.release(first.subarray(0, 10));
    pool.release(Buffer.from(first.buffer, 0, 1024));
    pool.release(second);
    const again = [pool.take(), pool.take(), pool.take()];
    expect(again.map((b) => b.length)).toEqual([1024, 1024, 1024]);
    expect(again.filter((b) => b.buffer === first.buffer)).toHaveLength(1);
    expect(again.filter((b) => b.buffer === second.buffer)).toHaveLength(1);
  });

  it('keeps as many spares as were ever out at once, and never a buffer of another size', () => {
    const pool = new BufferPool(1024);
    const taken = Array.from({ length: 6 }, () => pool.take());
    for (const b of taken) pool.release(b);
    pool.release(Buffer.alloc(10));
    const again = Array.from({ length: 7 }, () => pool.take());
    expect(again.filter((b) => taken.includes(b))).toHaveLength(6);
    expect(again.every((b) => b.length === 1024)).toBe(true);
  });

  it("gives chunk buffers of a page window's size", () => {
    expect(chunkBuffers.bytes).toBe(WINDOW_BYTES);
  });
});
