import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pageServerSocketPair } from './page-server-socket.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), name));
  dirs.push(dir);
  return dir;
}

describe('pageServerSocketPair', () => {
  it('connects the two ends, reads the agent end into the buffers onread names, and leaves nothing in the directory', async () => {
    const dir = await tempDir('ps-pair-');
    const target = Buffer.alloc(8);
    const reads: number[] = [];
    let done!: () => void;
    const got = new Promise<void>((resolve) => (done = resolve));
    const { agent, criu } = await pageServerSocketPair(dir, {
      buffer: () => target,
      callback: (n) => {
        reads.push(n);
        if (reads.reduce((a, b) => a + b, 0) >= 5) done();
        return true;
      },
    });
    criu.write('hello');
    await got;
    expect(target.subarray(0, 5).toString()).toBe('hello');
    // CRIU's end comes paused: nothing in this process reads what is meant for CRIU unless asked, as here.
    const back = new Promise<Buffer>((resolve) => criu.once('data', resolve));
    criu.resume();
    agent.write('ok');
    expect((await back).toString()).toBe('ok');
    expect(await readdir(dir)).toEqual([]);
    agent.destroy();
    criu.destroy();
  });

  it('makes the socket under the system temporary directory when the given one is too deep for a socket path', async () => {
    const deep = path.join(await tempDir('ps-deep-'), 'd'.repeat(120));
    const { agent, criu } = await pageServerSocketPair(deep, { buffer: Buffer.alloc(16), callback: () => true });
    const back = new Promise<Buffer>((resolve) => criu.once('data', resolve));
    criu.resume();
    agent.write('deep');
    expect((await back).toString()).toBe('deep');
    agent.destroy();
    criu.destroy();
  });
});
