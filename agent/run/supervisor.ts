// Supervises a running task: passes signals on, takes background checkpoints, checkpoints it on a spot notice.
import type { Logger } from 'pino';
import type { CriuCli, CriuVersion } from '../../criu-bridge/criu-cli.ts';
import { takeCheckpoint } from '../checkpoint/checkpoint.ts';
import type { AttemptRecord } from './attempt-report.ts';
import type { KnownChunks } from '../transfer/chunk-uploader.ts';
import type { Clock } from '../shared/clock.ts';
import type { AgentConfig } from '../config/config.ts';
import { ExitCode } from '../shared/exit-codes.ts';
import { onForwardedSignals } from '../task/forwarded-signals.ts';
import { watchForNotice, type NoticeSource } from '../notice/notice-watcher.ts';
import { treeResidentBytes } from '../task/process-tree.ts';
import { waitForReclaimOrStay } from '../notice/reclaim-watcher.ts';
import type { SnapshotStore } from '../store/snapshot-store.ts';
import type { SpotNotice } from '../notice/spot-notice.ts';
import type { TaskExit, TaskProcess } from '../task/task-process.ts';
import { RECLAIM_GRACE_MS } from '../shared/limits.ts';

export interface SupervisorContext {
  config: AgentConfig;
  criu: CriuCli;
  criuVersion: CriuVersion;
  store: SnapshotStore;
  notices: NoticeSource;
  command: readonly string[];
  knownChunks: KnownChunks;
  record: AttemptRecord;
  /** Called once a final checkpoint is committed, before waiting for the reclaim (which may end everything). */
  onFinalCheckpoint: () => Promise<void>;
  clock: Clock;
  log: Logger;
}

/** What supervision ended with. */
export type SupervisionResult =
  | { kind: 'task-exited'; exit: TaskExit }
  | { kind: 'checkpointed'; exitCode: number }
  | { kind: 'checkpoint-failed'; exitCode: number };

/** SPOTSNAP_CHECKPOINT_INTERVAL=auto: this often... */
export const AUTO_INTERVAL_MS = 10 * 60_000;
/** ...while the task holds at most this much memory (a background dump freezes it about a second per GiB). */
export const AUTO_BACKGROUND_MAX_BYTES = 8 * 1024 ** 3;

/**
 * 'running': the task runs; 'background-checkpoint': a background checkpoint is under way; 'final-checkpoint':
 * the notice's checkpoint is under way; 'checkpointed': it is committed and the tree is frozen until the
 * instance goes away (or stays, and the tree runs on).
 */
type State = 'running' | 'background-checkpoint' | 'final-checkpoint' | 'checkpointed';

/**
 * Supervises `task` until it exits or is checkpointed for the next attempt. `pendingSignals` are signals the agent
 * received before the task ran (during a restore): they are passed on first.
 */
export function supervise(ctx: SupervisorContext, task: TaskProcess, pendingSignals: readonly NodeJS.Signals[] = []): Promise<SupervisionResult> {
  const { config, log } = ctx;
  const stop = new AbortController();
  let state: State = 'running';
  let exitDuringCheckpoint: TaskExit | undefined;
  /** Signals that came during a final checkpoint: the agent exits after a commit, or passes them on after a failure. */
  const signalsDuringCheckpoint: NodeJS.Signals[] = [];
  /** Notices already acted on: one that stays posted after the instance stayed is not acted on again. */
  const handledNotices = new Set<string>();
  /** The one CRIU operation at a time: a notice waits for a background checkpoint to settle. */
  let background: Promise<void> = Promise.resolve();

  return new Promise<SupervisionResult>((resolve) => {
    let finished = false;
    const finish = (result: SupervisionResult): void => {
      if (finished) return;
      finished = true;
      stop.abort();
      removeSignalHandlers();
      resolve(result);
    };
    /** The checkpoint is committed and the next attempt resumes from it: the frozen tree goes, the agent exits. */
    const exitForRetry = (): void => {
      task.kill();
      finish({ kind: 'checkpointed', exitCode: ExitCode.checkpointedForRetry });
    };

    const onSignal = (signal: NodeJS.Signals): void => {
      if (state === 'running' || state === 'background-checkpoint') {
        log.info({ signal }, 'passing the signal on to the task');
        task.forwardSignal(signal);
      } else if (state === 'final-checkpoint') {
        log.warn({ signal }, 'signal received during a checkpoint: the checkpoint goes on, then the agent exits (or the task gets the signal if the checkpoint fails)');
        signalsDuringCheckpoint.push(signal);
      } else {
        log.info({ signal }, 'signal received after the checkpoint was committed: exiting for the retry');
        exitForRetry();
      }
    };
    const removeSignalHandlers = onForwardedSignals(onSignal);
    for (const signal of pendingSignals) onSignal(signal);

    void task.exited.then(async (exit) => {
      if (state === 'final-checkpoint') {
        exitDuringCheckpoint = exit;
        return;
      }
      // Frozen after a commit, the tree was killed from outside: the committed snapshot is the task's state.
      if (state === 'checkpointed') {
        log.warn({ reason: exit.reason }, 'the frozen task was killed after its checkpoint was committed: exiting for the retry');
        finish({ kind: 'checkpointed', exitCode: ExitCode.checkpointedForRetry });
        return;
      }
      // A background checkpoint still uploading is of no more use, but it must settle before the job's
      // snapshots are cleaned up.
      await background;
      finish({ kind: 'task-exited', exit });
    });

    const backgroundLoop = async (): Promise<void> => {
      const interval = config.checkpointInterval;
      if (interval.mode === 'off') return;
      const everyMs = interval.mode === 'every' ? interval.ms : AUTO_INTERVAL_MS;
      let warnedSize = false;
      let pathLogged = false;
      for (;;) {
        await ctx.clock.sleep(everyMs, stop.signal);
        if (state !== 'running') continue;
        const resident = treeResidentBytes(task.rootPid);
        if (interval.mode === 'auto' && resident > AUTO_BACKGROUND_MAX_BYTES) {
          if (!warnedSize) log.info({ residentBytes: resident }, 'no background checkpoints for a task this large (set SPOTSNAP_CHECKPOINT_INTERVAL to force them)');
          warnedSize = true;
          continue;
        }
        if (!pathLogged) {
          // Asked once, when the first background checkpoint is due, not at every task's start.
          const dirtyTracking = await ctx.criu.hasFeature('mem_dirty_track');
          log.info(
            { memDirtyTrack: dirtyTracking, interval },
            dirtyTracking
              ? 'the kernel tracks dirty memory, but spotsnap does not use criu pre-dump yet: background checkpoints are full dumps, deduplicated by chunk'
              : 'no dirty memory tracking on this kernel: background checkpoints are full dumps, deduplicated by chunk',
          );
          pathLogged = true;
          if (state !== 'running') continue;
        }
        state = 'background-checkpoint';
        background = takeCheckpoint({ ...ctx, task }, 'background', null).then(
          () => undefined,
          (error: unknown) => log.warn({ err: error instanceof Error ? error.message : String(error) }, 'background checkpoint failed; the task runs on'),
        );
        await background;
        if (state === 'background-checkpoint') state = 'running';
      }
    };
    void backgroundLoop().catch(() => undefined);

    /** Checkpoints at the notice; true when supervision goes on (the checkpoint failed, or the instance stayed). */
    const onNotice = async (notice: SpotNotice): Promise<boolean> => {
      handledNotices.add(notice.id);
      if (state === 'background-checkpoint') {
        log.warn({ action: notice.action, time: notice.time }, 'spot interruption notice during a background checkpoint: finishing it first');
        await background;
      }
      if (state !== 'running' || finished) return false;
      state = 'final-checkpoint';
      log.warn({ action: notice.action, time: notice.time, msBeforeDeadline: notice.deadline - ctx.clock.now() }, 'spot interruption notice: checkpointing');
      try {
        await takeCheckpoint({ ...ctx, task }, 'final', notice);
      } catch (error) {
        if (stop.signal.aborted) return false;
        log.error({ err: error instanceof Error ? error.message : String(error) }, 'checkpoint failed');
        state = 'running';
        const exit = exitDuringCheckpoint;
        if (exit) {
          finish(exit.commandEnded ? { kind: 'task-exited', exit } : { kind: 'checkpoint-failed', exitCode: ExitCode.checkpointFailed });
          return false;
        }
        log.warn('the task runs on without a checkpoint');
        // What the agent was asked meanwhile is the task's to answer now, as it would have been without spotsnap.
        for (const signal of signalsDuringCheckpoint.splice(0)) {
          log.info({ signal }, 'passing on the signal that came during the failed checkpoint');
          task.forwardSignal(signal);
        }
        return true;
      }
      state = 'checkpointed';
      await ctx.onFinalCheckpoint().catch(() => undefined);
      if (config.afterCheckpoint === 'exit' || signalsDuringCheckpoint.length > 0) {
        exitForRetry();
        return false;
      }
      log.info('task checkpointed and frozen; waiting for the instance to be reclaimed (the next attempt resumes it)');
      const reason = await waitForReclaimOrStay({
        source: ctx.notices,
        notice,
        intervalMs: config.pollIntervalMs,
        graceMs: RECLAIM_GRACE_MS,
        clock: ctx.clock,
        signal: stop.signal,
        log,
      }).catch(() => undefined);
      if (reason === undefined || finished) return false;
      // Nothing reclaimed the instance: the frozen tree simply goes on, as if the notice had never come.
      log.warn({ reason }, 'the instance was not reclaimed: the task runs on from where it was frozen');
      state = 'running';
      task.resumeOutput();
      task.continueTree();
      log.info('task resumed in place');
      return true;
    };

    void (async () => {
      for (;;) {
        const notice = await watchForNotice({
          source: ctx.notices,
          intervalMs: config.pollIntervalMs,
          clock: ctx.clock,
          signal: stop.signal,
          log,
          ignore: (n) => handledNotices.has(n.id),
        });
        if (!(await onNotice(notice))) return;
      }
    })().catch(() => undefined);
  });
}
