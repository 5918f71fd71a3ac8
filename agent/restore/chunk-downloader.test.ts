// How many ranged reads a restore keeps in flight, how many chunk buffers it holds, and that its files outlive the workers' writes.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHUNK_BUFFER_BYTES, chunkBuffers } from '../transfer/buffer-pool.ts';
import type { ChunkWorkers } from '../transfer/chunk-workers.ts';
import type { BodySink } from '../transfer/direct-range-get.ts';
import { downloadImages, GatherBuffers, readsInFlight } from './chunk-downloader.ts';

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

describe('downloadImages', () => {
  it('when a range fails, closes the image files only once the workers are done writing its chunks', async () => {
    const chunks = [0, 10].map((offset) => ({ digest: `sha256:${`${offset}`.padStart(64, '0')}`, bytes: 10, pack: 'p1', offset }));
    const pending: Array<() => void> = [];
    // Workers that hold each chunk until the test lets them finish, as busy ones would.
    const workers = {
      size: 1,
      decodeAndWrite: (stored: Buffer) => new Promise<Buffer>((resolve) => pending.push(() => resolve(stored))),
    } as unknown as ChunkWorkers;
    // A read that delivers both chunks, then fails (a connection cut after the SDK's last retry).
    const store = {
      readPackRange: async (_pack: string, _offset: number, bytes: number, sink: BodySink) => {
        sink.restart();
        sink.write(Buffer.alloc(bytes, 7));
        throw new Error('the connection was cut');
      },
    };
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-download-'));
    let rejected = false;
    const download = downloadImages(store, [{ name: 'pages-1.img', bytes: 20, chunks }], dir, 1, undefined, workers);
    download.catch(() => (rejected = true));
    await expect.poll(() => pending.length, { timeout: 5000 }).toBe(2);
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setImmediate(resolve));
    // The files are still open: the download has not given up while the workers write.
    expect(rejected).toBe(false);
    for (const finish of pending) finish();
    await expect(download).rejects.toThrow('the connection was cut');
  });
});
