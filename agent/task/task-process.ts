// A running task tree as the agent supervises it: its output relays, its exit status, its signals and its usage.
import { constants as osConstants } from 'node:os';
import type { Writable } from 'node:stream';
import type { TaskPipeKeys } from '../../criu-bridge/criu-options.ts';
import { systemClock, type Clock } from '../shared/clock.ts';
import { exitCodeForSignal } from '../shared/exit-codes.ts';
import type { OsPipe } from './os-pipe.ts';
import { OutputRelay } from './output-relay.ts';
import { childPids, signalQuietly, treeCpuMs, treePids, treeAnonymousBytes, treeResidentBytes } from './process-tree.ts';
import { parseInitStatus, type ProcOutcome } from './task-proc-mount.ts';
import type { CheckpointedTask, SupervisedTask, TaskCredentialsRelay, TaskExit, TaskHistory } from './task-tree.ts';

/** Where the task's output goes: the agent's own stdout and stderr, unless a test passes others. */
export interface TaskOutput {
  stdout: Writable;
  stderr: Writable;
}

/** How the parent of the tree (unshare, or criu restore in the foreground) ended. */
export interface ProcessExit {
  /** 128+N for a signal, else undefined. */
  signal?: number;
  code: number;
  reason: string;
}

/** The tree's three pipes, as the agent holds them. */
export interface TaskPipes {
  stdout: OsPipe;
  stderr: OsPipe;
  status: OsPipe;
}

/** What a tree is supervised with: time, where its output goes, and who hears how its /proc turned out. */
export interface TaskProcessOptions {
  clock?: Clock;
  output?: TaskOutput;
  onProcOutcome?: (outcome: ProcOutcome) => void;
}

/** How long the end of the tree waits for its pipes to be read to their end. */
const PIPE_END_WAIT_MS = 2000;
/** How often the tree's CPU time is sampled, so that its last figure survives its end. */
const CPU_SAMPLE_MS = 2000;

/** A running task tree. */
export class TaskProcess implements SupervisedTask, CheckpointedTask {
  /** The task's past, before this tree started or was restored. */
  history: TaskHistory = { runMs: 0, cpuMs: 0, interruptions: 0 };
  private readonly clock: Clock;
  private readonly startedAt: number;
  /** Host PID of the init of the task's PID namespace: what CRIU dumps (`-t`). */
  readonly rootPid: number;
  readonly pipeKeys: TaskPipeKeys;
  /** Resolves once the whole tree has ended. */
  readonly exited: Promise<TaskExit>;
  /** The task's stdout and stderr relays (its status pipe is read apart, and never held back). */
  private readonly outputRelays: OutputRelay[];
  /** The loopback credentials relay the task's environment names, recorded with each snapshot. */
  credentialsRelay: TaskCredentialsRelay | undefined;
  /** The tree's CPU time at the last look: once it has exited, /proc no longer has it. */
  private lastCpuMs = 0;
  private readonly cpuSampler: NodeJS.Timeout;

  private constructor(rootPid: number, pipeKeys: TaskPipeKeys, outputRelays: OutputRelay[], exited: Promise<TaskExit>, clock: Clock) {
    this.rootPid = rootPid;
    this.pipeKeys = pipeKeys;
    this.outputRelays = outputRelays;
    this.exited = exited;
    this.clock = clock;
    this.startedAt = clock.now();
    this.cpuSampler = setInterval(() => this.sampleCpu(), CPU_SAMPLE_MS).unref();
    void exited.then(() => clearInterval(this.cpuSampler));
  }

  /**
   * Supervises the tree rooted at `rootPid` whose parent ends with `parentExit`: copies its output pipes to
   * `output`, reads its status pipe, and resolves `exited` once the tree has ended.
   */
  static attach(rootPid: number, pipes: TaskPipes, parentExit: Promise<ProcessExit>, options: TaskProcessOptions = {}): TaskProcess {
    const { clock = systemClock, output = { stdout: process.stdout, stderr: process.stderr }, onProcOutcome } = options;
    const relays = [new OutputRelay(pipes.stdout.readFd, output.stdout), new OutputRelay(pipes.stderr.readFd, output.stderr)];
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
      // The clock's timers keep the agent alive while it waits: an unreferenced one let the event loop drain
      // while CRIU had ended and nothing else was pending, and the agent exited with its internal-error code (70).
      await Promise.race([statusRelay.ended, clock.sleep(PIPE_END_WAIT_MS)]);
      await Promise.all(relays.map((r) => Promise.race([r.ended, clock.sleep(PIPE_END_WAIT_MS)])));
      statusRelay.close();
      const { code } = parseInitStatus(statusText);
      if (code !== undefined) return { code, commandEnded: true, reason: `the task exited with ${code}` };
      return {
        code: parent.signal ?? exitCodeForSignal(osConstants.signals.SIGKILL),
        commandEnded: false,
        reason: `the task's namespace ended without a status (${parent.reason})`,
      };
    })();
    return new TaskProcess(rootPid, { stdout: pipes.stdout.key, stderr: pipes.stderr.key, status: pipes.status.key }, relays, exited, clock);
  }

  private sampleCpu(): number {
    this.lastCpuMs = Math.max(this.lastCpuMs, treeCpuMs(this.rootPid));
    return this.lastCpuMs;
  }

  /** Wall and CPU time of the task so far, over all its attempts. */
  usage(): { runMs: number; cpuMs: number } {
    return { runMs: this.history.runMs + (this.clock.now() - this.startedAt), cpuMs: this.history.cpuMs + this.sampleCpu() };
  }

  /** Every process of the tree, parents first. */
  pids(): number[] {
    return treePids(this.rootPid);
  }

  /** Resident memory of the whole tree, in bytes. */
  residentBytes(): number {
    return treeResidentBytes(this.rootPid);
  }

  /** Anonymous and shared-memory pages of the whole tree, in bytes. */
  anonymousBytes(): number {
    return treeAnonymousBytes(this.rootPid);
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
