// How many ranged reads a restore keeps in flight, from SPOTSNAP_PACKS_IN_FLIGHT and the size of the images, and how many chunk buffers it holds.
import { describe, expect, it } from 'vitest';
import { CHUNK_BUFFER_BYTES, chunkBuffers } from '../transfer/buffer-pool.ts';
import { GatherBuffers, readsInFlight } from './chunk-downloader.ts';

const GiB = 1024 ** 3;

describe('readsInFlight', () => {
  it('takes a number as it is set, whatever the size', () => {
    expect(readsInFlight(1, 64 * GiB)).toBe(1);
    expect(readsInFlight(32, 0)).toBe(32);
  });

  it('gives auto four for a small task, one per GiB of images above that, and sixteen at most', () => {
    expect(readsInFlight('auto', 0)).toBe(4);
    expect(readsInFlight('auto', 1 * GiB)).toBe(4);
    expect(readsInFlight('auto', 6.5 * GiB)).toBe(6);
    expect(readsInFlight('auto', 16 * GiB)).toBe(16);
    expect(readsInFlight('auto', 64 * GiB)).toBe(16);
  });
});

describe('GatherBuffers', () => {
  it('has room until its limit is out, and again once a buffer comes back', async () => {
    const buffers = new GatherBuffers(2);
    const a = buffers.take(4096);
    expect(buffers.room()).toBeUndefined();
    const b = buffers.take(CHUNK_BUFFER_BYTES);
    const waiting = buffers.room();
    expect(waiting).toBeInstanceOf(Promise);
    let settled = false;
    void waiting!.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(false);
    buffers.release(a);
    await waiting;
    expect(buffers.room()).toBeUndefined();
    buffers.release(b);
    expect(buffers.mostOut).toBe(2);
  });

  it('gathers in the chunk buffers a checkpoint fills its page windows in, whole ones back to the pool', () => {
    const buffers = new GatherBuffers(4);
    const partial = buffers.take(CHUNK_BUFFER_BYTES - 4096);
    expect(partial.length).toBe(CHUNK_BUFFER_BYTES - 4096);
    expect(partial.buffer.byteLength).toBe(CHUNK_BUFFER_BYTES);
    buffers.release(partial);
    // The next window a checkpoint takes is that same memory.
    const window = chunkBuffers.take();
    expect(window.buffer === partial.buffer).toBe(true);
    chunkBuffers.release(window);
    // A small image's chunk gets a buffer of its size, which the pool does not keep.
    const small = buffers.take(100);
    expect(small.buffer.byteLength).toBe(100);
    buffers.release(small);
    // A chunk larger than a window gets a buffer of its own, which the pool does not keep.
    const large = buffers.take(CHUNK_BUFFER_BYTES + 1);
    expect(large.buffer.byteLength).toBe(CHUNK_BUFFER_BYTES + 1);
    buffers.release(large);
    expect(chunkBuffers.take().buffer === large.buffer).toBe(false);
  });

  it('counts a buffer a failed worker kept as no longer out, so that no read waits for it for ever', async () => {
    const buffers = new GatherBuffers(1);
    buffers.take(10);
    const waiting = buffers.room();
    buffers.forget();
    await waiting;
    expect(buffers.room()).toBeUndefined();
  });

  it('refuses a limit below one', () => {
    expect(() => new GatherBuffers(0)).toThrow('at least one gather buffer, not 0');
  });
});
