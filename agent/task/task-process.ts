// A task's process tree as the agent supervises it: started fresh in its own PID namespace, or restored by CRIU.
import { spawn, type ChildProcess } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { constants as osConstants } from 'node:os';
import type { CriuCli } from '../../criu-bridge/criu-cli.ts';
import { CriuError } from '../../criu-bridge/criu-cli.ts';
import type { CriuRestoreOptions } from '../../criu-bridge/criu-options.ts';
import { exitCodeForSignal } from '../shared/exit-codes.ts';
import { findExecutable } from './find-executable.ts';
import { closeQuietly, createOsPipes, type OsPipe } from './os-pipe.ts';
import { OutputRelay } from './output-relay.ts';
import { childPids, pollFor, signalQuietly, treeCpuMs, treePids } from './process-tree.ts';
import { taskEnvironment } from './task-environment.ts';
import { parseInitStatus, taskLaunch, type ProcOutcome } from './task-proc-mount.ts';
import { LAUNCH_TIMEOUT_MS } from '../shared/limits.ts';

/** The pipes a task's tree writes to, as CRIU records them; a restore re-attaches each to a new pipe. */
export interface TaskPipeKeys {
  stdout: string;
  stderr: string;
  status: string;
}

export interface TaskExit {
  /** The exit code the agent passes on: the command's own, or 128+N when killed by signal N. */
  code: number;
  /** Whether the task's command itself ended and reported its status (false when the tree was killed). */
  commandEnded: boolean;
  /** Why, for the log. */
  reason: string;
}

/** What the task did before this process tree: carried from the snapshot it was restored from. */
export interface TaskHistory {
  runMs: number;
  cpuMs: number;
  interruptions: number;
}

/** How a task is started. */
export interface LaunchOptions {
  cwd: string;
  /** The container's environment as the task should see it (default: the agent's, with its own settings undone). */
  env?: NodeJS.ProcessEnv;
  /** Hears whether the task got a /proc of its own PID namespace. */
  onProcOutcome?: (outcome: ProcOutcome) => void;
  /** How long `unshare` may take to start the namespace (default LAUNCH_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** A running task tree. */
export class TaskProcess {
  /** The task's past, before this tree started or was restored. */
  history: TaskHistory = { runMs: 0, cpuMs: 0, interruptions: 0 };
  private readonly startedAt = Date.now();
  /** Host PID of the init of the task's PID namespace: what CRIU dumps (`-t`). */
  readonly rootPid: number;
  readonly pipeKeys: TaskPipeKeys;
  /** Resolves once the whole tree has ended. */
  readonly exited: Promise<TaskExit>;
  /** The task's stdout and stderr relays (its status pipe is read apart, and never held back). */
  private readonly outputRelays: OutputRelay[];
  /** The loopback credentials relay the task's environment names, recorded with each snapshot. */
  credentialsRelay: { port: number; token: string } | undefined;

  private constructor(rootPid: number, pipeKeys: TaskPipeKeys, outputRelays: OutputRelay[], exited: Promise<TaskExit>) {
    this.rootPid = rootPid;
    this.pipeKeys = pipeKeys;
    this.outputRelays = outputRelays;
    this.exited = exited;
  }

  /**
   * Starts `command` as the init of a new PID namespace and leader of a new session, with `env` (the container's
   * environment as the task should see it).
   */
  static async launch(command: readonly string[], options: LaunchOptions): Promise<TaskProcess> {
    const { cwd, env = taskEnvironment(process.env), onProcOutcome, timeoutMs = LAUNCH_TIMEOUT_MS } = options;
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
    const rootPid = await pollFor(() => childPids(launcher.pid ?? -1)[0] ?? (launcherEnded ? -1 : undefined), timeoutMs);
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
    return TaskProcess.supervise(rootPid, { stdout: stdout!, stderr: stderr!, status: status! }, launcherExit, onProcOutcome);
  }

  /**
   * Restores a dumped tree with `criu restore` in the foreground, re-attaching its output and status pipes
   * to new ones. Resolves once the tree runs again; rejects with what CRIU said when it does not.
   */
  static async restore(criu: CriuCli, options: Omit<CriuRestoreOptions, 'inheritFds'>, keys: TaskPipeKeys): Promise<TaskProcess> {
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
    const rootPid = await waitForRestored(options.pidFile, path.join(options.imagesDir, options.logFile), () => criuEnded);
    if (rootPid === undefined) {
      const result = await criuExit;
      for (const pipe of [stdout!, stderr!, status!]) closeQuietly(pipe.readFd);
      const excerpt = await criu.restoreFailure(restoreOptions, String(result.stderr ?? ''));
      throw new CriuError(`criu restore failed (exit ${result.exitCode})`, result.exitCode, excerpt);
    }
    const exit = criuExit.then((result): ProcessExit => ({ code: result.exitCode ?? 1, reason: `criu restore ended with ${result.exitCode}` }));
    return TaskProcess.supervise(rootPid, { stdout: stdout!, stderr: stderr!, status: status! }, exit);
  }

  private static supervise(
    rootPid: number,
    pipes: { stdout: OsPipe; stderr: OsPipe; status: OsPipe },
    parentExit: Promise<ProcessExit>,
    onProcOutcome?: (outcome: ProcOutcome) => void,
  ): TaskProcess {
    const relays = [new OutputRelay(pipes.stdout.readFd, process.stdout), new OutputRelay(pipes.stderr.readFd, process.stderr)];
    let statusText = '';
    let procReported = false;
    const statusRelay = new OutputRelay(pipes.status.readFd, (chunk) => {
      statusText += chunk.toString('utf8');
      const { proc } = parseInitStatus(statusText);
      if (proc && !procReported) {
        procReported = true;
        onProcOutcome?.(proc);
      }
    });
    const exited = (async (): Promise<TaskExit> => {
      const parent = await parentExit;
      await Promise.race([statusRelay.ended, delay(2000)]);
      await Promise.all(relays.map((r) => Promise.race([r.ended, delay(2000)])));
      statusRelay.close();
      const { code } = parseInitStatus(statusText);
      if (code !== undefined) return { code, commandEnded: true, reason: `the task exited with ${code}` };
      return { code: parent.signal ?? exitCodeForSignal(osConstants.signals.SIGKILL), commandEnded: false, reason: `the task's namespace ended without a status (${parent.reason})` };
    })();
    const task = new TaskProcess(rootPid, { stdout: pipes.stdout.key, stderr: pipes.stderr.key, status: pipes.status.key }, relays, exited);
    void exited.then(() => clearInterval(task.cpuSampler));
    return task;
  }

  /** The tree's CPU time at the last look: once it has exited, /proc no longer has it. */
  private lastCpuMs = 0;
  private readonly cpuSampler = setInterval(() => this.sampleCpu(), 2000).unref();

  private sampleCpu(): number {
    this.lastCpuMs = Math.max(this.lastCpuMs, treeCpuMs(this.rootPid));
    return this.lastCpuMs;
  }

  /** Wall and CPU time of the task so far, over all its attempts. */
  usage(): { runMs: number; cpuMs: number } {
    return { runMs: this.history.runMs + (Date.now() - this.startedAt), cpuMs: this.history.cpuMs + this.sampleCpu() };
  }

  /** Stops copying output: before a freeze, and while a restored tree has yet to prove it runs. */
  pauseOutput(): void {
    for (const relay of this.outputRelays) relay.pause();
  }

  resumeOutput(): void {
    for (const relay of this.outputRelays) relay.resume();
  }

  /** Keeps the output a restored tree prints until the restore counts as done (`releaseOutput`) or not (`discardOutput`). */
  holdOutput(): void {
    for (const relay of this.outputRelays) relay.hold();
  }

  releaseOutput(): void {
    for (const relay of this.outputRelays) relay.release();
  }

  discardOutput(): void {
    for (const relay of this.outputRelays) relay.discard();
  }

  /**
   * Passes a signal to the task's command (the child of the namespace init), as `docker stop` would
   * to a container's main process.
   */
  forwardSignal(signal: NodeJS.Signals): void {
    const commands = childPids(this.rootPid);
    for (const pid of commands.length > 0 ? commands : [this.rootPid]) signalQuietly(pid, signal);
  }

  /** Lets a tree that CRIU left stopped run on. */
  continueTree(): void {
    for (const pid of treePids(this.rootPid)) signalQuietly(pid, 'SIGCONT');
  }

  /** Ends the whole tree: killing a PID namespace's init kills everything in it. */
  kill(): void {
    signalQuietly(this.rootPid, 'SIGKILL');
  }

  /** Copies out what the frozen tree left in its pipes (a restore does not replay it); output stays paused. */
  drainOutput(): void {
    for (const relay of this.outputRelays) relay.drain();
  }

  /** Kills the tree and resolves once it has ended (its pipes closed, its exit read). */
  async killAndWait(): Promise<TaskExit> {
    this.kill();
    this.continueTree();
    return this.exited;
  }
}

interface ProcessExit {
  /** 128+N for a signal, else undefined. */
  signal?: number;
  code: number;
  reason: string;
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

/**
 * Waits until CRIU wrote the root's PID and logged that the tasks resumed; undefined when criu ended first.
 * (CRIU's own exit status cannot tell: in the foreground it only ends with the restored tree.)
 */
async function waitForRestored(pidFile: string, logFile: string, gaveUp: () => boolean): Promise<number | undefined> {
  for (;;) {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && (await fileTail(logFile, 4096)).includes('Restore finished successfully')) return pid;
    if (gaveUp()) return undefined;
    await delay(25);
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

/**
 * A timer that keeps the agent alive while it waits: an unreferenced one let the event loop drain while CRIU
 * had ended and nothing else was pending, and the agent exited with its internal-error code (70).
 */
function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
