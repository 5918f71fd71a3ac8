import { writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closeQuietly, createOsPipes } from './os-pipe.ts';
import { OutputRelay } from './output-relay.ts';

/** A relay on a new pipe, what it wrote so far, and the pipe's write end. */
async function relayOnPipe() {
  const [pipe] = await createOsPipes(1);
  const written: string[] = [];
  const relay = new OutputRelay(pipe!.readFd, (chunk) => written.push(chunk.toString()));
  return { relay, written, writeFd: pipe!.writeFd };
}

/** Writes to the pipe and waits until the relay has read it (it always reads; holding only keeps it back). */
async function send(fd: number, text: string, read: () => number): Promise<void> {
  const before = read();
  writeSync(fd, text);
  while (read() < before + text.length) await new Promise((resolve) => setImmediate(resolve));
}

describe('OutputRelay holding output back', () => {
  it('keeps what it reads while held, and writes it in order on release', async () => {
    const { relay, written, writeFd } = await relayOnPipe();
    relay.hold();
    const counting = relay as unknown as { held?: Buffer[] };
    await send(writeFd, 'one\n', () => (counting.held ?? []).reduce((s, b) => s + b.length, 0) + written.join('').length);
    expect(written).toEqual([]);
    relay.release();
    expect(written.join('')).toBe('one\n');
    const seen = written.join('').length;
    await send(writeFd, 'two\n', () => written.join('').length);
    expect(written.join('').slice(seen)).toBe('two\n');
    closeQuietly(writeFd);
    await relay.ended;
  });

  it('drops what was held when discarded, then passes output through again', async () => {
    const { relay, written, writeFd } = await relayOnPipe();
    relay.hold();
    const counting = relay as unknown as { held?: Buffer[] };
    await send(writeFd, 'from a tree given up\n', () => (counting.held ?? []).reduce((s, b) => s + b.length, 0));
    relay.discard();
    await send(writeFd, 'fresh\n', () => written.join('').length);
    expect(written.join('')).toBe('fresh\n');
    closeQuietly(writeFd);
    await relay.ended;
  });

  it('lets go by itself once more than 1 MiB is held', async () => {
    const { relay, written, writeFd } = await relayOnPipe();
    relay.hold();
    const block = 'x'.repeat(32 * 1024);
    const counting = relay as unknown as { held?: Buffer[] };
    const read = () => (counting.held ?? []).reduce((s, b) => s + b.length, 0) + written.join('').length;
    for (let i = 0; i < 32; i++) await send(writeFd, block, read);
    // 1 MiB held: nothing out yet; one more block and it lets go of everything, in order.
    expect(written).toEqual([]);
    await send(writeFd, block, read);
    expect(written.join('').length).toBe(33 * block.length);
    closeQuietly(writeFd);
    await relay.ended;
  });
});
