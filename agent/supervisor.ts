// Supervises a running task: passes signals on, checkpoints it on a spot notice, and returns the container's exit code.
import type { Logger } from 'pino';
import type { CriuCli, CriuVersion } from '../criu-bridge/criu-cli.ts';
import { takeCheckpoint } from './checkpoint.ts';
import type { Clock } from './clock.ts';
import type { AgentConfig } from './config.ts';
import { ExitCode } from './exit-codes.ts';
import { onForwardedSignals } from './forwarded-signals.ts';
import { watchForNotice, type NoticeSource } from './notice-watcher.ts';
import { waitForReclaimOrStay, type StayReason } from './reclaim-watcher.ts';
import type { SnapshotStore } from './snapshot-store.ts';
import type { TaskExit, TaskProcess } from './task-process.ts';

export interface SupervisorContext {
  config: AgentConfig;
  criu: CriuCli;
  criuVersion: CriuVersion;
  store: SnapshotStore;
  notices: NoticeSource;
  command: readonly string[];
  knownChunks: Set<string>;
  clock: Clock;
  log: Logger;
}

/** What supervision ended with. */
export type SupervisionResult =
  | { kind: 'task-exited'; exit: TaskExit }
  | { kind: 'checkpointed'; exitCode: number }
  | { kind: 'checkpoint-failed'; exitCode: number }
  /** The task was checkpointed and killed, but the instance stayed: resume it here from that snapshot. */
  | { kind: 'instance-stayed'; reason: StayReason };

/** How long past a notice's deadline a still-running instance counts as staying. */
const RECLAIM_GRACE_MS = 60_000;

type State = 'running' | 'checkpointing' | 'checkpointed';

export function supervise(ctx: SupervisorContext, task: TaskProcess): Promise<SupervisionResult> {
  const { config, log } = ctx;
  const stopWatching = new AbortController();
  let state: State = 'running';
  let exitDuringCheckpoint: TaskExit | undefined;
  let terminationRequested = false;

  return new Promise<SupervisionResult>((resolve) => {
    const finish = (result: SupervisionResult): void => {
      stopWatching.abort();
      removeSignalHandlers();
      resolve(result);
    };

    const removeSignalHandlers = onForwardedSignals((signal) => {
      if (state === 'running') {
        log.info({ signal }, 'passing the signal on to the task');
        task.forwardSignal(signal);
      } else if (state === 'checkpointing') {
        log.warn({ signal }, 'signal received during a checkpoint: the checkpoint goes on, then the agent exits');
        terminationRequested = true;
      } else {
        log.info({ signal }, 'signal received after the checkpoint was committed: exiting for the retry');
        finish({ kind: 'checkpointed', exitCode: ExitCode.checkpointedForRetry });
      }
    });

    void task.exited.then((exit) => {
      if (state === 'running') finish({ kind: 'task-exited', exit });
      else if (state === 'checkpointing') exitDuringCheckpoint = exit;
    });

    void watchForNotice({ source: ctx.notices, intervalMs: config.pollIntervalMs, clock: ctx.clock, signal: stopWatching.signal, log }).then(
      async (notice) => {
        if (state !== 'running') return;
        state = 'checkpointing';
        log.warn({ action: notice.action, time: notice.time, msBeforeDeadline: notice.deadline - ctx.clock.now() }, 'spot interruption notice: checkpointing');
        try {
          await takeCheckpoint({ ...ctx, task }, 'final', notice);
          state = 'checkpointed';
          if (config.afterCheckpoint === 'exit' || terminationRequested) {
            finish({ kind: 'checkpointed', exitCode: ExitCode.checkpointedForRetry });
            return;
          }
          log.info('task checkpointed; waiting for the instance to be reclaimed (the next attempt resumes it)');
          const reason = await waitForReclaimOrStay({
            source: ctx.notices,
            notice,
            intervalMs: config.pollIntervalMs,
            graceMs: RECLAIM_GRACE_MS,
            clock: ctx.clock,
            signal: stopWatching.signal,
            log,
          });
          log.warn({ reason }, 'the instance was not reclaimed: resuming the task here from its snapshot');
          finish({ kind: 'instance-stayed', reason });
        } catch (error) {
          log.error({ err: error instanceof Error ? error.message : String(error) }, 'checkpoint failed');
          state = 'running';
          const exit = exitDuringCheckpoint;
          if (exit) {
            finish(exit.commandEnded ? { kind: 'task-exited', exit } : { kind: 'checkpoint-failed', exitCode: ExitCode.checkpointFailed });
          } else {
            log.warn('the task runs on without a checkpoint');
          }
        }
      },
      () => undefined,
    );
  });
}
