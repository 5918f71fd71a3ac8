// The window spill: windows wait raw in a file while the task is frozen, then reach the pipeline in order, and it stops spilling when full or slower than the uploads.
import { access, mkdir, mkdtemp, open, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { chunkBuffers } from '../transfer/buffer-pool.ts';
import type { PageSink, ReceivedImage } from './page-receiver.ts';
import { WindowSpill } from './window-spill.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function spillFile(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'window-spill-'));
  dirs.push(dir);
  return path.join(dir, 'spool', 'windows');
}

/** A spill file that cannot be made: a file stands where its directory would be. */
async function unmakeableSpillFile(): Promise<string> {
  const blocker = await spillFile();
  await mkdir(path.dirname(blocker), { recursive: true });
  await writeFile(blocker, 'a file where the spill directory would be');
  return path.join(blocker, 'windows');
}

/**
 * Opens the spill file as the agent does, with a handle that refuses its `n`-th write (from 1) with ENOSPC: a
 * work dir that was full for a moment, while the writes out beside it, and those after it, went through.
 */
function refusingWrite(n: number): (file: string) => Promise<FileHandle> {
  return async (file) => {
    const real = await open(file, 'wx+', 0o600);
    let writes = 0;
    return new Proxy(real, {
      get(target, property) {
        if (property === 'write') {
          return (buffer: Buffer, offset: number, length: number, position: number) =>
            ++writes === n
              ? Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }))
              : target.write(buffer, offset, length, position);
        }
        const value = Reflect.get(target, property) as unknown;
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  };
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** The pipeline's stand-in: what it received, in order, as copies (the buffers go back to the pool). */
class RecordingSink implements PageSink {
  readonly received: Array<{ image: ReceivedImage; bytes: Buffer }> = [];
  take(): Buffer {
    return chunkBuffers.take();
  }
  async chunk(image: ReceivedImage, buffer: Buffer, length: number): Promise<void> {
    this.received.push({ image, bytes: Buffer.from(buffer.subarray(0, length)) });
    chunkBuffers.release(buffer);
  }
}

const imageA: ReceivedImage = { image: { type: 1, pid: 1 } as never, pagesId: 1, entries: [], pagesBytes: 0 };
const imageB: ReceivedImage = { image: { type: 1, pid: 2 } as never, pagesId: 2, entries: [], pagesBytes: 0 };

/** Windows of seeded bytes, of various lengths (a window holds the present pages of 1 MiB of addresses). */
function windows(count: number): Array<{ image: ReceivedImage; bytes: Buffer }> {
  return Array.from({ length: count }, (_, i) => ({ image: i % 3 === 2 ? imageB : imageA, bytes: seededBytes(`window-${i}`, 4096 * (1 + ((i * 37) % 256))) }));
}

async function feed(sink: PageSink, list: Array<{ image: ReceivedImage; bytes: Buffer }>): Promise<void> {
  for (const w of list) {
    const buffer = sink.take();
    w.bytes.copy(buffer);
    await sink.chunk(w.image, buffer, w.bytes.length);
  }
}

describe('WindowSpill', () => {
  it('holds every window in its file, sends none, then sends them all in order once drained, and removes the file', async () => {
    const file = await spillFile();
    const inner = new RecordingSink();
    const spill = new WindowSpill(inner, { file, limitBytes: 64 << 20 });
    const list = windows(20);
    await feed(spill, list);
    expect(inner.received).toHaveLength(0);
    expect(spill.heldBytes).toBe(list.reduce((s, w) => s + w.bytes.length, 0));
    expect(await exists(file)).toBe(true);

    await spill.drain();
    expect(spill.spilledWindows).toBe(20);
    expect(inner.received.map((r) => r.image)).toEqual(list.map((w) => w.image));
    expect(inner.received.every((r, i) => r.bytes.equals(list[i]!.bytes))).toBe(true);
    expect(spill.heldBytes).toBe(0);
    expect(await exists(file)).toBe(false);
    // After the drain, windows go straight on.
    await feed(spill, windows(2));
    expect(inner.received).toHaveLength(22);
  });

  it('sends what it holds first when the next window would pass the limit, so the order never changes', async () => {
    const file = await spillFile();
    const inner = new RecordingSink();
    const list = windows(12);
    const limit = list.slice(0, 5).reduce((s, w) => s + w.bytes.length, 0);
    const spill = new WindowSpill(inner, { file, limitBytes: limit });
    await feed(spill, list);
    expect(spill.spilledWindows).toBe(5);
    expect(spill.mostBytes).toBe(limit);
    expect(inner.received.every((r, i) => r.bytes.equals(list[i]!.bytes))).toBe(true);
    expect(inner.received).toHaveLength(12);
    await spill.drain();
    expect(inner.received).toHaveLength(12);
  });

  it('counts what the same limit holds elsewhere', async () => {
    const inner = new RecordingSink();
    const spill = new WindowSpill(inner, { file: await spillFile(), limitBytes: 8 << 20, othersHeldBytes: () => 8 << 20 });
    await feed(spill, windows(3));
    expect(spill.spilledWindows).toBe(0);
    expect(inner.received).toHaveLength(3);
  });

  it('stops spilling once the work dir takes windows more slowly than the uploads would', async () => {
    const inner = new RecordingSink();
    // Each write takes 10 ms on this clock: about 100 KB/ms for these windows, against uploads of 1 GB/s.
    let clock = 0;
    const now = () => (clock += 5);
    const spill = new WindowSpill(inner, { file: await spillFile(), limitBytes: 1 << 30, uploadBytesPerMs: () => 1e6, now });
    const list = windows(20);
    await feed(spill, list);
    // Judged after 8 written, with up to 4 more out by then.
    expect(spill.spilledWindows).toBeGreaterThanOrEqual(8);
    expect(spill.spilledWindows).toBeLessThanOrEqual(12);
    expect(inner.received.every((r, i) => r.bytes.equals(list[i]!.bytes))).toBe(true);
    expect(inner.received).toHaveLength(20);

    // A work dir faster than the uploads keeps everything.
    const fast = new WindowSpill(new RecordingSink(), { file: await spillFile(), limitBytes: 1 << 30, uploadBytesPerMs: () => 1, now });
    await feed(fast, windows(20));
    await fast.discard();
    expect(fast.spilledWindows).toBe(20);
  });

  it('sends every window on when the work dir refuses the file, saying why', async () => {
    const inner = new RecordingSink();
    const spill = new WindowSpill(inner, { file: await unmakeableSpillFile(), limitBytes: 64 << 20 });
    const list = windows(6);
    await feed(spill, list);
    expect(spill.spilledWindows).toBe(0);
    expect(spill.writeError).toMatch(/ENOTDIR|EEXIST/);
    expect(inner.received.every((r, i) => r.bytes.equals(list[i]!.bytes))).toBe(true);
    expect(inner.received).toHaveLength(6);
  });

  it('writes zeros ahead up to its limit, which the windows then fill, and reads the windows back unchanged', async () => {
    const file = await spillFile();
    const inner = new RecordingSink();
    const limit = (5 << 20) + 12345;
    const spill = new WindowSpill(inner, { file, limitBytes: limit, othersHeldBytes: () => 1 << 20 });
    expect(await spill.reserve(64 << 20)).toBe(limit - (1 << 20));
    expect((await stat(file)).size).toBe(limit - (1 << 20));
    expect(spill.heldBytes).toBe(limit - (1 << 20));
    expect(spill.mostBytes).toBe(limit - (1 << 20));
    // The others' bytes are gone now: the windows may use the whole limit, past the reservation.
    const roomy = new WindowSpill(inner, { file: await spillFile(), limitBytes: 64 << 20 });
    expect(await roomy.reserve(3 << 20)).toBe(3 << 20);
    const list = windows(20);
    const total = list.reduce((sum, w) => sum + w.bytes.length, 0);
    expect(total).toBeGreaterThan(3 << 20);
    await feed(roomy, list);
    expect(roomy.heldBytes).toBe(total);
    await roomy.drain();
    expect(inner.received.map((r) => r.image)).toEqual(list.map((w) => w.image));
    expect(inner.received.every((r, i) => r.bytes.equals(list[i]!.bytes))).toBe(true);
    expect(roomy.spilledWindows).toBe(20);
    await spill.discard();
    expect(await exists(file)).toBe(false);
  });

  it('reserves nothing once windows are placed, and the windows stay put in a reservation larger than they need', async () => {
    const file = await spillFile();
    const sizes: number[] = [];
    // Records the file's size as the read-back sends each window on.
    const inner = new (class extends RecordingSink {
      override async chunk(image: ReceivedImage, buffer: Buffer, length: number): Promise<void> {
        sizes.push((await stat(file)).size);
        await super.chunk(image, buffer, length);
      }
    })();
    const spill = new WindowSpill(inner, { file, limitBytes: 64 << 20 });
    expect(await spill.reserve(32 << 20)).toBe(32 << 20);
    const list = windows(4);
    await feed(spill, list);
    expect(await spill.reserve(32 << 20)).toBe(0);
    // The file counts whole until it goes, read back or not (the pack spill shares the limit).
    expect(spill.heldBytes).toBe(32 << 20);
    const draining = spill.drain();
    expect(spill.heldBytes).toBe(32 << 20);
    await draining;
    expect(spill.heldBytes).toBe(0);
    // The room no window took was cut off before the first window was read back.
    const placed = list.reduce((sum, w) => sum + w.bytes.length, 0);
    expect(sizes).toEqual(list.map(() => placed));
    expect(inner.received.every((r, i) => r.bytes.equals(list[i]!.bytes))).toBe(true);
    expect(inner.received).toHaveLength(4);
  });

  it('keeps spilling as before when the work dir refuses the reservation, and says why', async () => {
    const inner = new RecordingSink();
    const spill = new WindowSpill(inner, { file: await unmakeableSpillFile(), limitBytes: 64 << 20 });
    expect(await spill.reserve(8 << 20)).toBe(0);
    expect(spill.reserveRefused).toMatch(/ENOTDIR|EEXIST/);
    // The reservation's refusal is its own: the windows' writes have not been refused yet.
    expect(spill.writeError).toBeUndefined();
    expect(spill.heldBytes).toBe(0);
    const list = windows(6);
    await feed(spill, list);
    expect(spill.writeError).toMatch(/ENOTDIR|EEXIST/);
    expect(inner.received.every((r, i) => r.bytes.equals(list[i]!.bytes))).toBe(true);
    expect(inner.received).toHaveLength(6);
  });

  it('counts only the room before a refused write when the work dir fills part-way, and its windows spill unchanged', async () => {
    const inner = new RecordingSink();
    // Of the first four 1 MiB writes out at once, the third (at 2 MiB) is refused and the fourth (at 3 MiB) goes
    // through: the room is the 2 MiB before the hole, not the 4 MiB written to.
    const spill = new WindowSpill(inner, { file: await spillFile(), limitBytes: 64 << 20, open: refusingWrite(3) });
    expect(await spill.reserve(8 << 20)).toBe(2 << 20);
    expect(spill.reserveRefused).toMatch(/ENOSPC/);
    expect(spill.writeError).toBeUndefined();
    expect(spill.heldBytes).toBe(2 << 20);
    // The windows go into the file, within the room and past it, and come back as they were.
    const list = windows(20);
    const total = list.reduce((sum, w) => sum + w.bytes.length, 0);
    expect(total).toBeGreaterThan(4 << 20);
    await feed(spill, list);
    expect(spill.heldBytes).toBe(total);
    await spill.drain();
    expect(spill.spilledWindows).toBe(20);
    expect(spill.writeError).toBeUndefined();
    expect(inner.received.map((r) => r.image)).toEqual(list.map((w) => w.image));
    expect(inner.received.every((r, i) => r.bytes.equals(list[i]!.bytes))).toBe(true);
  });

  it('discards its file without sending anything when the checkpoint failed', async () => {
    const file = await spillFile();
    const inner = new RecordingSink();
    const spill = new WindowSpill(inner, { file, limitBytes: 64 << 20 });
    await feed(spill, windows(4));
    await spill.discard();
    expect(await exists(file)).toBe(false);
    expect(inner.received).toHaveLength(0);
  });
});
