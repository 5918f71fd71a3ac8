// Brings a dumped task tree back with `criu restore` in the foreground, its output and status pipes re-attached.
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CriuError } from '../../criu-bridge/criu-cli.ts';
import type { CriuRestoreOptions, TaskPipeKeys } from '../../criu-bridge/criu-options.ts';
import { systemClock, type Clock } from '../shared/clock.ts';
import { closeQuietly, createOsPipes } from './os-pipe.ts';
import { TaskProcess, type ProcessExit, type TaskOutput } from './task-process.ts';

/** What a restore needs of CRIU (criu-bridge/criu-cli.ts's CriuCli): a foreground restore, and its log when it fails. */
export interface CriuRestorer {
  /** Starts `criu restore`; `inheritedFds[i]` is criu's descriptor 3+i. Resolves when criu (and so the tree) ends. */
  startRestore(options: CriuRestoreOptions, inheritedFds: readonly number[]): Promise<{ exitCode?: number; stderr?: unknown }>;
  /** What CRIU logged about a failed restore. */
  restoreFailure(options: CriuRestoreOptions, stderr: string): Promise<string>;
}

export interface TaskRestoreOptions {
  clock?: Clock;
  /** Where the task's output goes (default: the agent's stdout and stderr). */
  output?: TaskOutput;
}

/** How often the restore's pid file and log are looked at while CRIU works. */
const RESTORE_POLL_MS = 25;

/**
 * Restores a dumped tree with `criu restore` in the foreground, re-attaching its output and status pipes
 * to new ones. Resolves once the tree runs again; rejects with what CRIU said when it does not.
 */
export async function restoreTask(
  criu: CriuRestorer,
  options: Omit<CriuRestoreOptions, 'inheritFds'>,
  keys: TaskPipeKeys,
  { clock = systemClock, output }: TaskRestoreOptions = {},
): Promise<TaskProcess> {
  const [stdout, stderr, status] = await createOsPipes(3);
  const restoreOptions: CriuRestoreOptions = {
    ...options,
    inheritFds: [
      { fd: 3, key: keys.stdout },
      { fd: 4, key: keys.stderr },
      { fd: 5, key: keys.status },
    ],
  };
  const criuProcess = criu.startRestore(restoreOptions, [stdout!.writeFd, stderr!.writeFd, status!.writeFd]);
  for (const pipe of [stdout!, stderr!, status!]) closeQuietly(pipe.writeFd);
  let criuEnded = false;
  const criuExit = criuProcess.then((result) => {
    criuEnded = true;
    return result;
  });
  const rootPid = await waitForRestored(options.pidFile, path.join(options.imagesDir, options.logFile), () => criuEnded, clock);
  if (rootPid === undefined) {
    const result = await criuExit;
    for (const pipe of [stdout!, stderr!, status!]) closeQuietly(pipe.readFd);
    const excerpt = await criu.restoreFailure(restoreOptions, String(result.stderr ?? ''));
    throw new CriuError(`criu restore failed (exit ${result.exitCode})`, result.exitCode, excerpt);
  }
  const exit = criuExit.then((result): ProcessExit => ({ code: result.exitCode ?? 1, reason: `criu restore ended with ${result.exitCode}` }));
  return TaskProcess.attach(rootPid, { stdout: stdout!, stderr: stderr!, status: status! }, exit, { clock, output });
}

/**
 * Waits until CRIU wrote the root's PID and logged that the tasks resumed; undefined when criu ended first.
 * (CRIU's own exit status cannot tell: in the foreground it only ends with the restored tree.)
 */
async function waitForRestored(pidFile: string, logFile: string, gaveUp: () => boolean, clock: Clock): Promise<number | undefined> {
  for (;;) {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && (await fileTail(logFile, 4096)).includes('Restore finished successfully')) return pid;
    if (gaveUp()) return undefined;
    await clock.sleep(RESTORE_POLL_MS);
  }
}

async function fileTail(file: string, bytes: number): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (!handle) return '';
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.min(bytes, size));
    await handle.read(buffer, 0, buffer.length, size - buffer.length);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}
