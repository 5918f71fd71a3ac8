// What the layers above need of a task's process tree: the seams the supervisor and the checkpoint work through.
import type { TaskPipeKeys } from '../../criu-bridge/criu-options.ts';

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

/** The loopback credentials relay the task's environment names (agent/task/credentials-relay.ts). */
export interface TaskCredentialsRelay {
  port: number;
  token: string;
}

/** What the supervisor needs of the tree: its end, its signals, letting it run on, ending it, and its size. */
export interface SupervisedTask {
  /** Resolves once the whole tree has ended. */
  readonly exited: Promise<TaskExit>;
  /** Passes a signal to the task's command, as `docker stop` would to a container's main process. */
  forwardSignal(signal: NodeJS.Signals): void;
  /** Lets a tree that was left stopped (by CRIU, or frozen after a commit) run on. */
  continueTree(): void;
  /** Copies the task's output again after `pauseOutput()`. */
  resumeOutput(): void;
  /** Ends the whole tree. */
  kill(): void;
  /** Resident memory of the whole tree, in bytes. */
  residentBytes(): number;
}

/** What a checkpoint needs of the tree: what to dump, its pipes and history, and control of its output. */
export interface CheckpointedTask {
  /** Host PID of the init of the task's PID namespace: what CRIU dumps (`-t`). */
  readonly rootPid: number;
  /** The task's output and status pipes as CRIU records them. */
  readonly pipeKeys: TaskPipeKeys;
  /** The task's past, before this tree started or was restored. */
  readonly history: TaskHistory;
  readonly credentialsRelay: TaskCredentialsRelay | undefined;
  /** Wall and CPU time of the task so far, over all its attempts. */
  usage(): { runMs: number; cpuMs: number };
  /** Every process of the tree, parents first. */
  pids(): number[];
  residentBytes(): number;
  /** Anonymous and shared-memory pages of the whole tree, in bytes: about what CRIU dumps as pages. */
  anonymousBytes(): number;
  /** Stops copying output: before a freeze. */
  pauseOutput(): void;
  resumeOutput(): void;
  /** Copies out what the frozen tree left in its pipes; output stays paused. */
  drainOutput(): void;
  continueTree(): void;
}
