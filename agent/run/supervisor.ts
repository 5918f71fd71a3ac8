// Supervises a running task: signals, its exit, notices, the background interval, checkpoints and the reclaim feed decide().
import type { Logger } from 'pino';
import type { CheckpointKind } from '../checkpoint/checkpoint.ts';
import type { Clock } from '../shared/clock.ts';
import { RECLAIM_GRACE_MS } from '../shared/limits.ts';
import { watchForNotice, type NoticeSource } from '../notice/notice-watcher.ts';
import { waitForReclaimOrStay } from '../notice/reclaim-watcher.ts';
import type { SpotNotice } from '../notice/spot-notice.ts';
import { onForwardedSignals } from '../task/forwarded-signals.ts';
import type { SupervisedTask } from '../task/task-tree.ts';
import { decide } from './supervision.ts';
import {
  backgroundEveryMs,
  initialState,
  type SupervisionAction,
  type SupervisionEvent,
  type SupervisionPolicy,
  type SupervisionResult,
  type SupervisionState,
} from './supervision-types.ts';

/** Calls the handler for each signal the task is to get; returns what removes the handler. */
export type SignalSource = (handler: (signal: NodeJS.Signals) => void) => () => void;

export interface SupervisorContext {
  config: SupervisionPolicy & { pollIntervalMs: number };
  task: SupervisedTask;
  notices: NoticeSource;
  /** Takes one checkpoint of the task (agent/checkpoint/checkpoint.ts): resolves once committed, rejects when it failed. */
  checkpoint: (kind: CheckpointKind, notice: SpotNotice | null) => Promise<unknown>;
  /** Whether the kernel tracks dirty memory (`criu check --feature mem_dirty_track`). */
  dirtyTracking: () => Promise<boolean>;
  /** Called once a final checkpoint is committed, before waiting for the reclaim (which may end everything). */
  onFinalCheckpoint: () => Promise<void>;
  /** Where signals come from (default: the ones the agent's process receives, agent/task/forwarded-signals.ts). */
  signals?: SignalSource;
  clock: Clock;
  log: Logger;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Supervises the task until it exits or is checkpointed for the next attempt. `pendingSignals` are signals the
 * agent received before the task ran (during a restore): they are passed on first. Every source reports an event;
 * decide() says what it means; the actions it returns are carried out here, and those that take time report
 * their outcome as the next event.
 */
export function supervise(ctx: SupervisorContext, pendingSignals: readonly NodeJS.Signals[] = []): Promise<SupervisionResult> {
  const { config, task, clock, log } = ctx;
  const stop = new AbortController();
  const everyMs = backgroundEveryMs(config.checkpointInterval);
  let state: SupervisionState = initialState({ checkpointInterval: config.checkpointInterval, afterCheckpoint: config.afterCheckpoint });

  return new Promise<SupervisionResult>((resolve) => {
    let removeSignalHandlers = (): void => undefined;
    const queue: SupervisionEvent[] = [];
    let dispatching = false;
    /** Decides on events one at a time, in the order they came, even when an action reports one at once. */
    const dispatch = (event: SupervisionEvent): void => {
      queue.push(event);
      if (dispatching) return;
      dispatching = true;
      try {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
          const decision = decide(state, next);
          state = decision.state;
          for (const action of decision.actions) perform(action);
        }
      } finally {
        dispatching = false;
      }
    };
    const ended = (): undefined => undefined;

    const perform = (action: SupervisionAction): void => {
      switch (action.kind) {
        case 'log':
          log[action.level]({ event: action.event, ...action.fields }, action.msg);
          return;
        case 'forward-signal':
          task.forwardSignal(action.signal);
          return;
        case 'checkpoint': {
          const { checkpoint } = action;
          ctx.checkpoint(checkpoint, action.notice).then(
            () => dispatch({ kind: 'checkpoint-settled', checkpoint, now: clock.now() }),
            (error: unknown) => dispatch({ kind: 'checkpoint-settled', checkpoint, error: describe(error), now: clock.now() }),
          );
          return;
        }
        case 'ask-dirty-tracking':
          ctx.dirtyTracking().then(
            (available) => dispatch({ kind: 'dirty-tracking', available }),
            () => dispatch({ kind: 'dirty-tracking', available: false }),
          );
          return;
        case 'schedule-background':
          if (everyMs === undefined) return;
          clock
            .sleep(everyMs, stop.signal)
            .then(
              () => dispatch({ kind: 'background-due', residentBytes: config.checkpointInterval.mode === 'auto' ? task.residentBytes() : undefined }),
              ended,
            );
          return;
        case 'watch-notices':
          watchForNotice({
            source: ctx.notices,
            intervalMs: config.pollIntervalMs,
            clock,
            signal: stop.signal,
            log,
            ignore: (n) => state.handledNotices.includes(n.id),
          }).then((notice) => dispatch({ kind: 'notice', notice, now: clock.now() }), ended);
          return;
        case 'report-final-checkpoint':
          ctx
            .onFinalCheckpoint()
            .catch(ended)
            .then(() => dispatch({ kind: 'final-reported' }));
          return;
        case 'watch-reclaim':
          waitForReclaimOrStay({
            source: ctx.notices,
            notice: action.notice,
            intervalMs: config.pollIntervalMs,
            graceMs: RECLAIM_GRACE_MS,
            clock,
            signal: stop.signal,
            log,
          }).then((reason) => dispatch({ kind: 'instance-stayed', reason }), ended);
          return;
        case 'resume-tree':
          task.resumeOutput();
          task.continueTree();
          return;
        case 'kill-tree':
          task.kill();
          return;
        case 'finish':
          stop.abort();
          removeSignalHandlers();
          resolve(action.result);
          return;
      }
    };

    removeSignalHandlers = (ctx.signals ?? onForwardedSignals)((signal) => dispatch({ kind: 'signal', signal }));
    for (const signal of pendingSignals) dispatch({ kind: 'signal', signal });
    void task.exited.then((exit) => dispatch({ kind: 'task-exited', exit }));
    dispatch({ kind: 'start' });
  });
}
