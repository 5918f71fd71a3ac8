// The supervisor's vocabulary: its phases and state, the events its sources report and the actions it decides on.
import type { CheckpointInterval } from '../config/config.ts';
import type { CheckpointKind } from '../checkpoint/checkpoint.ts';
import type { LogEventName } from '../shared/log-events.ts';
import type { StayReason } from '../notice/reclaim-watcher.ts';
import type { SpotNotice } from '../notice/spot-notice.ts';
import type { TaskExit } from '../task/task-tree.ts';

/** SPOTSNAP_CHECKPOINT_INTERVAL=auto: this often... */
export const AUTO_INTERVAL_MS = 10 * 60_000;
/** ...while the task holds at most this much memory (a background dump freezes it about a second per GiB). */
export const AUTO_BACKGROUND_MAX_BYTES = 8 * 1024 ** 3;

/** What supervision ended with. */
export type SupervisionResult =
  | { kind: 'task-exited'; exit: TaskExit }
  | { kind: 'checkpointed'; exitCode: number }
  | { kind: 'checkpoint-failed'; exitCode: number };

/** The settings the decisions follow. */
export interface SupervisionPolicy {
  checkpointInterval: CheckpointInterval;
  /** 'exit': once a final checkpoint is committed the agent exits; 'wait': it waits for the reclaim (or the stay). */
  afterCheckpoint: 'wait' | 'exit';
}

/**
 * 'running': the task runs; 'background-checkpoint': a background checkpoint is under way; 'final-checkpoint':
 * the notice's checkpoint is under way; 'checkpointed': it is committed and the tree is frozen until the instance
 * goes away (or stays, and the tree runs on); 'done': supervision has ended.
 */
export type Phase = 'running' | 'background-checkpoint' | 'final-checkpoint' | 'checkpointed' | 'done';

export interface SupervisionState {
  readonly policy: SupervisionPolicy;
  readonly phase: Phase;
  /** Notices already acted on: one that stays posted after the instance stayed is not acted on again. */
  readonly handledNotices: readonly string[];
  /** A notice that came during a background checkpoint: acted on once that settles (one CRIU operation at a time). */
  readonly pendingNotice: SpotNotice | undefined;
  /** The notice of the final checkpoint under way or committed. */
  readonly finalNotice: SpotNotice | undefined;
  /** How the task ended while a checkpoint was under way (it is judged when the checkpoint settles). */
  readonly exitDuringCheckpoint: TaskExit | undefined;
  /** Signals that came during a final checkpoint: the agent exits after a commit, or passes them on after a failure. */
  readonly signalsDuringCheckpoint: readonly NodeJS.Signals[];
  /** Whether the agent said once that the task is too large for automatic background checkpoints. */
  readonly warnedSize: boolean;
  /** Whether the kernel's dirty memory tracking was asked about (once, when the first background checkpoint is due). */
  readonly dirtyTrackingAsked: boolean;
}

export type SupervisionEvent =
  /** Supervision begins (after the signals that came before it). */
  | { kind: 'start' }
  | { kind: 'signal'; signal: NodeJS.Signals }
  | { kind: 'task-exited'; exit: TaskExit }
  /** A notice not yet acted on; `now` is when it was seen. */
  | { kind: 'notice'; notice: SpotNotice; now: number }
  /** The background interval passed; `residentBytes` is the tree's size where the interval is 'auto'. */
  | { kind: 'background-due'; residentBytes?: number }
  | { kind: 'dirty-tracking'; available: boolean }
  /** A checkpoint ended: committed (no `error`) or failed, with why. `now` is when. */
  | { kind: 'checkpoint-settled'; checkpoint: CheckpointKind; error?: string; now: number }
  /** The attempt's report of a committed final checkpoint was stored (or given up on). */
  | { kind: 'final-reported' }
  /** After a committed final checkpoint, nothing reclaimed the instance. */
  | { kind: 'instance-stayed'; reason: StayReason };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export type SupervisionAction =
  /** A log line; `event` names it (agent/shared/log-events.ts). */
  | { kind: 'log'; level: LogLevel; event: LogEventName; msg: string; fields?: Record<string, unknown> }
  | { kind: 'forward-signal'; signal: NodeJS.Signals }
  /** Start the one CRIU operation: it ends with a 'checkpoint-settled' event. */
  | { kind: 'checkpoint'; checkpoint: CheckpointKind; notice: SpotNotice | null }
  /** Ask `criu check --feature mem_dirty_track`: it ends with a 'dirty-tracking' event. */
  | { kind: 'ask-dirty-tracking' }
  /** Wait the background interval: it ends with a 'background-due' event. */
  | { kind: 'schedule-background' }
  /** Poll for a notice not yet acted on: it ends with a 'notice' event. */
  | { kind: 'watch-notices' }
  /** Store the attempt's report of the committed checkpoint: it ends with a 'final-reported' event. */
  | { kind: 'report-final-checkpoint' }
  /** Wait for the reclaim: the instance going away ends everything; staying ends with an 'instance-stayed' event. */
  | { kind: 'watch-reclaim'; notice: SpotNotice }
  /** Let the frozen tree and its output go on. */
  | { kind: 'resume-tree' }
  | { kind: 'kill-tree' }
  | { kind: 'finish'; result: SupervisionResult };

export interface Decision {
  state: SupervisionState;
  actions: SupervisionAction[];
}

export function initialState(policy: SupervisionPolicy): SupervisionState {
  return {
    policy,
    phase: 'running',
    handledNotices: [],
    pendingNotice: undefined,
    finalNotice: undefined,
    exitDuringCheckpoint: undefined,
    signalsDuringCheckpoint: [],
    warnedSize: false,
    dirtyTrackingAsked: false,
  };
}

/** The background interval in ms, or undefined when background checkpoints are off. */
export function backgroundEveryMs(interval: CheckpointInterval): number | undefined {
  if (interval.mode === 'off') return undefined;
  return interval.mode === 'every' ? interval.ms : AUTO_INTERVAL_MS;
}
