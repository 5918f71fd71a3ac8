// Starts a task fresh: the init of its own PID namespace (with a /proc of its own) and leader of a new session.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { systemClock, type Clock } from '../shared/clock.ts';
import { exitCodeForSignal } from '../shared/exit-codes.ts';
import { LAUNCH_TIMEOUT_MS } from '../shared/limits.ts';
import { findExecutable } from './find-executable.ts';
import { closeQuietly, createOsPipes } from './os-pipe.ts';
import { childPids, pollFor, signalQuietly, treePids } from './process-tree.ts';
import { taskEnvironment } from './task-environment.ts';
import { taskLaunch, type ProcOutcome } from './task-proc-mount.ts';
import { TaskProcess, type ProcessExit, type TaskOutput } from './task-process.ts';

/** How a task is started. */
export interface LaunchOptions {
  cwd: string;
  /** The container's environment as the task should see it (default: the agent's, with its own settings undone). */
  env?: NodeJS.ProcessEnv;
  /** Hears whether the task got a /proc of its own PID namespace. */
  onProcOutcome?: (outcome: ProcOutcome) => void;
  /** How long `unshare` may take to start the namespace (default LAUNCH_TIMEOUT_MS). */
  timeoutMs?: number;
  clock?: Clock;
  /** Where the task's output goes (default: the agent's stdout and stderr). */
  output?: TaskOutput;
}

/**
 * Starts `command` as the init of a new PID namespace and leader of a new session, with `env` (the container's
 * environment as the task should see it).
 */
export async function launchTask(command: readonly string[], options: LaunchOptions): Promise<TaskProcess> {
  const { cwd, env = taskEnvironment(process.env), onProcOutcome, timeoutMs = LAUNCH_TIMEOUT_MS, clock = systemClock, output } = options;
  // Found on the agent's PATH (the bundle's first): the task's own PATH, which it gets back, may lack them.
  const unshare = findExecutable('unshare') ?? 'unshare';
  const setsid = findExecutable('setsid') ?? 'setsid';
  const [stdout, stderr, status] = await createOsPipes(3);
  const launcher = spawn(
    unshare,
    // The init of the task's PID namespace, in a mount namespace with a /proc of that PID namespace
    // (agent/task/task-proc-mount.ts): it runs the command with stdin from /dev/null and descriptor 3 closed, then
    // writes the command's exit status to descriptor 3, a pipe the agent reads. criu restore reports 0 whatever
    // the task's exit code, so the status travels this way, and survives a checkpoint with the task.
    taskLaunch(setsid, command),
    { cwd, env, stdio: ['ignore', stdout!.writeFd, stderr!.writeFd, status!.writeFd] },
  );
  const launcherExit = processExit(launcher);
  for (const pipe of [stdout!, stderr!, status!]) closeQuietly(pipe.writeFd);
  let launcherEnded: ProcessExit | undefined;
  void launcherExit.then((exit) => (launcherEnded = exit));
  // The namespace init is the launcher's only child; if the launcher ends first, it could not create it.
  const rootPid = await pollFor(() => childPids(launcher.pid ?? -1)[0] ?? (launcherEnded ? -1 : undefined), timeoutMs, undefined, clock);
  if (rootPid === undefined || rootPid === -1) {
    const endedByItself = launcherEnded;
    if (!endedByItself) {
      // The caller runs the task another way next: a launcher left behind could still start it a second time.
      // Frozen first, so that it forks nothing more while its children are found and killed.
      signalQuietly(launcher.pid ?? -1, 'SIGSTOP');
      for (const pid of treePids(launcher.pid ?? -1).reverse()) signalQuietly(pid, 'SIGKILL');
      await launcherExit;
    }
    for (const pipe of [stdout!, stderr!, status!]) closeQuietly(pipe.readFd);
    const why = endedByItself ? `unshare ${endedByItself.reason}` : `unshare did not start it within ${timeoutMs / 1000} s`;
    throw new Error(`could not start the task in its own PID namespace (${why}); the container needs CAP_SYS_ADMIN, see docker/README.md`);
  }
  return TaskProcess.attach(rootPid, { stdout: stdout!, stderr: stderr!, status: status! }, launcherExit, { clock, output, onProcOutcome });
}

function processExit(child: ChildProcess): Promise<ProcessExit> {
  return new Promise((resolve) => {
    child.once('error', (error) => resolve({ code: 127, reason: error.message }));
    child.once('exit', (code, signal) => {
      const signalCode = signal ? exitCodeForSignal(osConstants.signals[signal]) : undefined;
      resolve({ code: code ?? signalCode ?? 1, signal: signalCode, reason: signal ? `killed by ${signal}` : `exit ${code}` });
    });
  });
}
