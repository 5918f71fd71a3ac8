import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { childPids, pollFor, treeAnonymousBytes, treeCpuMs, treePids, treeResidentBytes } from './process-tree.ts';

describe('process tree figures from /proc', () => {
  it('finds a child, and sums CPU time and resident memory over the tree', async () => {
    const child = spawn('sh', ['-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 5'], { stdio: 'ignore' });
    try {
      expect(await pollFor(() => (childPids(process.pid).includes(child.pid!) ? true : undefined), 2000)).toBe(true);
      expect(treePids(process.pid)).toContain(child.pid);
      // The loop above burns CPU in the child before it sleeps.
      const cpu = await pollFor(() => (treeCpuMs(child.pid!) >= 20 ? treeCpuMs(child.pid!) : undefined), 10_000, 50);
      expect(cpu).toBeGreaterThanOrEqual(20);
      expect(treeResidentBytes(process.pid)).toBeGreaterThan(treeResidentBytes(child.pid!));
      expect(treeResidentBytes(child.pid!)).toBeGreaterThan(0);
      expect(treeCpuMs(2 ** 22 + 12345)).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it("counts a tree's anonymous memory apart from its mapped binaries: what a dump would hold", () => {
    // 64 MiB this process wrote, held while measured.
    const held = Buffer.alloc(64 << 20, 1);
    const anonymous = treeAnonymousBytes(process.pid);
    expect(anonymous).toBeGreaterThan(64 << 20);
    // Node's own binary and libraries are resident and file-backed: counted in VmRSS, not here.
    expect(anonymous).toBeLessThan(treeResidentBytes(process.pid));
    expect(treeAnonymousBytes(2 ** 22 + 12345)).toBe(0);
    expect(held[held.length - 1]).toBe(1);
  });

  it('finds children forked by a thread other than the main one (as a JVM or a worker thread forks them)', async () => {
    // libuv forks from the thread that calls spawn: this child belongs to the worker's thread, not the main one.
    const worker = new Worker(
      "const { spawn } = require('node:child_process'); const c = spawn('sleep', ['30'], { stdio: 'ignore' }); require('node:worker_threads').parentPort.postMessage(c.pid);",
      { eval: true },
    );
    const pid = await new Promise<number>((resolve) => worker.once('message', resolve));
    try {
      const mainThreadChildren = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8');
      expect(mainThreadChildren.split(/\s+/)).not.toContain(String(pid));
      expect(childPids(process.pid)).toContain(pid);
      expect(treePids(process.pid)).toContain(pid);
    } finally {
      process.kill(pid, 'SIGKILL');
      await worker.terminate();
    }
  });
});

describe('pollFor', () => {
  it('checks every interval of the clock it is given, and gives up once its time on that clock is over', async () => {
    const clock = new FakeClock();
    let looks = 0;
    expect(await pollFor(() => void looks++, 1_000, 100, clock)).toBeUndefined();
    expect(looks).toBe(11);
    expect(clock.sleeps).toEqual(Array(10).fill(100));
  });

  it('returns the first value read', async () => {
    const clock = new FakeClock();
    let looks = 0;
    expect(await pollFor(() => (++looks === 3 ? 'found' : undefined), 1_000, 100, clock)).toBe('found');
    expect(clock.sleeps).toEqual([100, 100]);
  });
});
