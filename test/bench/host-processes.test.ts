import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { treePids } from '../../agent/task/process-tree.ts';
import { killTree, LoggedProcess, peakRssOf, timedRun } from './host-processes.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'host-processes-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('LoggedProcess', () => {
  it('waits for a line on either stream, and keeps the output in a log file', async () => {
    const logFile = path.join(dir, 'out.log');
    const p = new LoggedProcess('sh', ['-c', 'echo one; echo two >&2; read never'], { cwd: dir, env: process.env, logFile });
    await p.waitFor(/^two$/m, 10_000);
    await p.waitFor(/^one$/m, 10_000);
    await killTree(p.pid);
    expect(existsSync(logFile)).toBe(true);
  });

  it('refuses to wait on once the process exited, with its last output', async () => {
    const p = new LoggedProcess('sh', ['-c', 'echo gave up; exit 3'], { cwd: dir, env: process.env });
    await expect(p.waitFor(/never printed/, 10_000)).rejects.toThrow(/exited \(code 3\)[\s\S]*gave up/);
  });
});

/** Whether a process runs (not gone, not a zombie). */
function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe('killTree', () => {
  it('finds and kills grandchildren too, and resolves once they are gone', async () => {
    const p = new LoggedProcess('sh', ['-c', 'sh -c "sleep 1000 & echo \\$!; wait" & wait'], { cwd: dir, env: process.env });
    await p.waitFor(/^\d+$/m, 10_000);
    const sleeper = Number(/^(\d+)$/m.exec(p.stdout)![1]);
    expect(treePids(p.pid)).toContain(sleeper);
    expect(peakRssOf(sleeper)).toBeGreaterThan(0);
    await killTree(p.pid);
    expect(running(sleeper)).toBe(false);
  });
});

describe('timedRun', () => {
  it('says what failed, with its output', async () => {
    expect(await timedRun('true', [], dir)).toBeGreaterThanOrEqual(0);
    await expect(timedRun('sh', ['-c', 'echo broken >&2; exit 1'], dir)).rejects.toThrow(/failed \(code 1\)[\s\S]*broken/);
  });
});
