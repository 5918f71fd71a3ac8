import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkReferencedFiles, isWithin, planOutsideFiles, scratchDirsFor } from './outside-files.ts';
import { pollFor } from './process-tree.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'outside-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Makes the files that "came with the image", then returns a time after all of them: what changes next is the task's. */
async function imageFiles(...files: string[]): Promise<number> {
  let latest = 0;
  for (const file of files) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `image copy of ${path.basename(file)}`);
    const st = await stat(file);
    latest = Math.max(latest, st.ctimeMs, st.mtimeMs, (await stat(path.dirname(file))).ctimeMs);
  }
  // File times come from the kernel's coarse clock (a few ms per tick): wait for that clock itself to move past
  // them, by writing a probe until its change time is later, so that what is written next is later too.
  const probe = path.join(root, '.clock');
  let since = 0;
  do {
    await writeFile(probe, '');
    since = (await stat(probe)).ctimeMs;
  } while (since <= latest);
  await rm(probe);
  return since;
}

describe('planOutsideFiles', () => {
  it('captures what changed in scratch directories, references what the task holds unchanged, and skips SPOTSNAP_PATHS', async () => {
    const scratch = path.join(root, 'tmp');
    const work = path.join(root, 'work');
    const data = path.join(root, 'data');
    const since = await imageFiles(path.join(scratch, 'from-image.txt'), path.join(data, 'input.bin'), path.join(work, 'old.txt'));
    await mkdir(path.join(scratch, 'spill'));
    await writeFile(path.join(scratch, 'spill', 'run-1'), 'sorted run');
    await symlink('run-1', path.join(scratch, 'spill', 'latest'));
    await writeFile(path.join(work, 'new.txt'), 'in the working directory');
    // The shell itself holds the files and waits on a read of its stdin, so that "ready" means its libraries are
    // mapped: an `exec` after it would leave a moment in which the new program has not mapped libc yet.
    const task = spawn('sh', ['-c', `exec 7<${data}/input.bin 8>>${data}/out.log 9<${work}/old.txt; echo ready; read line`], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    try {
      await new Promise((resolve) => task.stdout.once('data', resolve));
      const pid = await pollFor(() => (task.pid !== undefined ? task.pid : undefined), 1000);
      const plan = await planOutsideFiles({ pids: [pid!], paths: [work], scratchDirs: [scratch], changedSinceMs: since, exclude: [] });
      expect(plan.captured).toEqual([
        path.join(data, 'out.log'),
        path.join(scratch, 'spill'),
        path.join(scratch, 'spill', 'latest'),
        path.join(scratch, 'spill', 'run-1'),
      ]);
      const input = plan.referenced.find((f) => f.path === path.join(data, 'input.bin'));
      expect(input).toEqual({
        path: path.join(data, 'input.bin'),
        bytes: (await stat(path.join(data, 'input.bin'))).size,
        mtimeMs: Math.trunc((await stat(path.join(data, 'input.bin'))).mtimeMs),
      });
      // Nothing under SPOTSNAP_PATHS, nothing from the kernel's own filesystems.
      expect(
        [...plan.captured, ...plan.referenced.map((f) => f.path)].filter((p) => isWithin(p, work) || p.startsWith('/proc') || p.startsWith('/dev/')),
      ).toEqual([]);
      // The program and libraries it maps come with the image: referenced, not copied.
      expect(plan.referenced.some((f) => /libc\.so/.test(f.path))).toBe(true);
    } finally {
      task.kill('SIGKILL');
    }
  });

  it('leaves out excluded directories', async () => {
    const scratch = path.join(root, 'tmp');
    const since = await imageFiles(path.join(scratch, 'keep'));
    await mkdir(path.join(scratch, 'agent'));
    await writeFile(path.join(scratch, 'agent', 'images.img'), "the agent's own");
    await writeFile(path.join(scratch, 'task.out'), "the task's");
    const plan = await planOutsideFiles({ pids: [], paths: [], scratchDirs: [scratch], changedSinceMs: since, exclude: [path.join(scratch, 'agent')] });
    expect(plan.captured).toEqual([path.join(scratch, 'task.out')]);
  });
});

describe('checkReferencedFiles', () => {
  it('passes files as they were and names a missing or changed one', async () => {
    const file = path.join(root, 'input.bin');
    await writeFile(file, 'twelve bytes');
    const st = await stat(file);
    const ref = { path: file, bytes: st.size, mtimeMs: Math.trunc(st.mtimeMs) };
    await expect(checkReferencedFiles([ref])).resolves.toBeUndefined();
    await expect(checkReferencedFiles([{ ...ref, bytes: 13 }])).rejects.toThrow(`the task had ${file} open (13 bytes`);
    await expect(checkReferencedFiles([{ ...ref, path: `${file}.gone` }])).rejects.toThrow(`${file}.gone open and it is not in this container`);
  });
});

describe('scratchDirsFor', () => {
  it('adds an absolute TMPDIR once, and ignores a relative one or "/"', () => {
    expect(scratchDirsFor({ TMPDIR: '/scratch/tmp/' })).toEqual(['/tmp', '/var/tmp', '/dev/shm', '/scratch/tmp']);
    expect(scratchDirsFor({ TMPDIR: '/tmp' })).toEqual(['/tmp', '/var/tmp', '/dev/shm']);
    expect(scratchDirsFor({ TMPDIR: 'tmp' })).toEqual(['/tmp', '/var/tmp', '/dev/shm']);
    expect(scratchDirsFor({ TMPDIR: '/' })).toEqual(['/tmp', '/var/tmp', '/dev/shm']);
  });
});
