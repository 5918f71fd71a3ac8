import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { childPids, pollFor, treeCpuMs, treePids, treeResidentBytes } from './process-tree.ts';

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
});
