// Starting a task fresh: a launcher that cannot start the namespace, or starts it too slowly, leaves nothing behind.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { launchTask } from './task-launch.ts';

let dir: string;
let savedPath: string | undefined;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'launch-'));
  savedPath = process.env.PATH;
});
afterEach(async () => {
  process.env.PATH = savedPath;
  await rm(dir, { recursive: true, force: true });
});

describe('launchTask', () => {
  it('kills an unshare that is too slow to start the task, so that it can never start it later', async () => {
    // A stand-in for an unshare that hangs before it forks: it records its PID, then waits without forking
    // until told to go on, and would then "start the task" by leaving a mark.
    const unshare = path.join(dir, 'unshare');
    await writeFile(unshare, `#!/bin/sh\necho $$ > "${dir}/pid"\nwhile [ ! -e "${dir}/go" ]; do :; done\ntouch "${dir}/task-started"\n`);
    await chmod(unshare, 0o755);
    process.env.PATH = `${dir}:${savedPath}`;
    // 2 s: long enough for the stand-in to have recorded its PID on a busy machine, before the launch gives up.
    const launching = launchTask(['true'], { cwd: dir, env: { PATH: savedPath }, timeoutMs: 2000 });
    await expect(launching).rejects.toThrow('could not start the task in its own PID namespace (unshare did not start it within 2 s)');
    const pid = Number((await readFile(path.join(dir, 'pid'), 'utf8')).trim());
    // Gone and reaped by the time the launch gave up: told to go on now, nothing is left to start the task.
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    await writeFile(path.join(dir, 'go'), '');
    await expect(readFile(path.join(dir, 'task-started'))).rejects.toThrow(/ENOENT/);
  });

  it('says why when unshare cannot start the namespace at all', async () => {
    const unshare = path.join(dir, 'unshare');
    await writeFile(unshare, '#!/bin/sh\necho "unshare: unshare failed: Operation not permitted" >&2\nexit 1\n');
    await chmod(unshare, 0o755);
    process.env.PATH = `${dir}:${savedPath}`;
    await expect(launchTask(['true'], { cwd: dir, env: { PATH: savedPath } })).rejects.toThrow(
      /could not start the task in its own PID namespace \(unshare exit 1\); the container needs CAP_SYS_ADMIN/,
    );
  });
});
