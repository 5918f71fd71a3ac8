// The supervisor's decisions as one pure function: (state, event) -> (state, actions), with no clock, process or I/O.
import { ExitCode } from '../shared/exit-codes.ts';
import { LogEvent, type LogEventName } from '../shared/log-events.ts';
import type { StayReason } from '../notice/reclaim-watcher.ts';
import type { SpotNotice } from '../notice/spot-notice.ts';
import type { TaskExit } from '../task/task-tree.ts';
import {
  AUTO_BACKGROUND_MAX_BYTES,
  backgroundEveryMs,
  type Decision,
  type LogLevel,
  type SupervisionAction,
  type SupervisionEvent,
  type SupervisionResult,
  type SupervisionState,
} from './supervision-types.ts';

const log = (level: LogLevel, event: LogEventName, msg: string, fields?: Record<string, unknown>): SupervisionAction => ({
  kind: 'log',
  level,
  event,
  msg,
  ...(fields ? { fields } : {}),
});
const finish = (result: SupervisionResult): SupervisionAction => ({ kind: 'finish', result });
const CHECKPOINTED: SupervisionResult = { kind: 'checkpointed', exitCode: ExitCode.checkpointedForRetry };

/** Decides what an event means in the state supervision is in. Events after the end change nothing. */
export function decide(state: SupervisionState, event: SupervisionEvent): Decision {
  if (state.phase === 'done') return { state, actions: [] };
  switch (event.kind) {
    case 'start': {
      const actions: SupervisionAction[] = [{ kind: 'watch-notices' }];
      if (backgroundEveryMs(state.policy.checkpointInterval) !== undefined) actions.push({ kind: 'schedule-background' });
      return { state, actions };
    }
    case 'signal':
      return onSignal(state, event.signal);
    case 'task-exited':
      return onTaskExited(state, event.exit);
    case 'notice':
      return onNotice(state, event.notice, event.now);
    case 'background-due':
      return onBackgroundDue(state, event.residentBytes);
    case 'dirty-tracking':
      return onDirtyTracking(state, event.available);
    case 'checkpoint-settled':
      return event.checkpoint === 'background' ? onBackgroundSettled(state, event.error, event.now) : onFinalSettled(state, event.error);
    case 'final-reported':
      return onFinalReported(state);
    case 'instance-stayed':
      return onInstanceStayed(state, event.reason);
  }
}

function done(state: SupervisionState, ...actions: SupervisionAction[]): Decision {
  return { state: { ...state, phase: 'done' }, actions };
}

function onSignal(state: SupervisionState, signal: NodeJS.Signals): Decision {
  switch (state.phase) {
    case 'running':
    case 'background-checkpoint':
      return { state, actions: [log('info', LogEvent.signalForwarded, 'passing the signal on to the task', { signal }), { kind: 'forward-signal', signal }] };
    case 'final-checkpoint':
      return {
        state: { ...state, signalsDuringCheckpoint: [...state.signalsDuringCheckpoint, signal] },
        actions: [
          log(
            'warn',
            LogEvent.signalDuringCheckpoint,
            'signal received during a checkpoint: the checkpoint goes on, then the agent exits (or the task gets the signal if the checkpoint fails)',
            { signal },
          ),
        ],
      };
    case 'checkpointed':
      // The checkpoint is committed and the next attempt resumes from it: the frozen tree goes, the agent exits.
      return done(
        state,
        log('info', LogEvent.signalAfterCommit, 'signal received after the checkpoint was committed: exiting for the retry', { signal }),
        { kind: 'kill-tree' },
        finish(CHECKPOINTED),
      );
  }
  return { state, actions: [] };
}

function onTaskExited(state: SupervisionState, exit: TaskExit): Decision {
  switch (state.phase) {
    case 'running':
      return done(state, finish({ kind: 'task-exited', exit }));
    // A checkpoint under way is judged when it settles; a background one still uploading is of no more use, but
    // it must settle before the job's snapshots are cleaned up.
    case 'background-checkpoint':
    case 'final-checkpoint':
      return { state: { ...state, exitDuringCheckpoint: exit }, actions: [] };
    case 'checkpointed':
      // Frozen after a commit, the tree was killed from outside: the committed snapshot is the task's state.
      return done(
        state,
        log('warn', LogEvent.taskKilledFrozen, 'the frozen task was killed after its checkpoint was committed: exiting for the retry', { reason: exit.reason }),
        finish(CHECKPOINTED),
      );
  }
  return { state, actions: [] };
}

function onNotice(state: SupervisionState, notice: SpotNotice, now: number): Decision {
  if (state.handledNotices.includes(notice.id)) return { state, actions: [] };
  const handled = { ...state, handledNotices: [...state.handledNotices, notice.id] };
  if (state.phase === 'background-checkpoint') {
    return {
      state: { ...handled, pendingNotice: notice },
      actions: [
        log('warn', LogEvent.noticeDeferred, 'spot interruption notice during a background checkpoint: finishing it first', {
          action: notice.action,
          time: notice.time,
        }),
      ],
    };
  }
  if (state.phase === 'running') return startFinal(handled, notice, now);
  return { state: handled, actions: [] };
}

function startFinal(state: SupervisionState, notice: SpotNotice, now: number): Decision {
  return {
    state: { ...state, phase: 'final-checkpoint', pendingNotice: undefined, finalNotice: notice, signalsDuringCheckpoint: [], exitDuringCheckpoint: undefined },
    actions: [
      log('warn', LogEvent.noticeReceived, 'spot interruption notice: checkpointing', {
        action: notice.action,
        time: notice.time,
        msBeforeDeadline: notice.deadline - now,
      }),
      { kind: 'checkpoint', checkpoint: 'final', notice },
    ],
  };
}

function onBackgroundDue(state: SupervisionState, residentBytes: number | undefined): Decision {
  const again: SupervisionAction = { kind: 'schedule-background' };
  if (state.phase !== 'running') return { state, actions: [again] };
  if (state.policy.checkpointInterval.mode === 'auto' && residentBytes !== undefined && residentBytes > AUTO_BACKGROUND_MAX_BYTES) {
    if (state.warnedSize) return { state, actions: [again] };
    return {
      state: { ...state, warnedSize: true },
      actions: [
        log('info', LogEvent.checkpointBackgroundOff, 'no background checkpoints for a task this large (set SPOTSNAP_CHECKPOINT_INTERVAL to force them)', {
          residentBytes,
        }),
        again,
      ],
    };
  }
  // Asked once, when the first background checkpoint is due, not at every task's start.
  if (!state.dirtyTrackingAsked) return { state: { ...state, dirtyTrackingAsked: true }, actions: [{ kind: 'ask-dirty-tracking' }] };
  return startBackground(state);
}

function onDirtyTracking(state: SupervisionState, available: boolean): Decision {
  const said = log(
    'info',
    LogEvent.checkpointDirtyTracking,
    available
      ? 'the kernel tracks dirty memory, but spotsnap does not use criu pre-dump yet: background checkpoints are full dumps, deduplicated by chunk'
      : 'no dirty memory tracking on this kernel: background checkpoints are full dumps, deduplicated by chunk',
    { memDirtyTrack: available, interval: state.policy.checkpointInterval },
  );
  if (state.phase !== 'running') return { state, actions: [said, { kind: 'schedule-background' }] };
  const started = startBackground(state);
  return { state: started.state, actions: [said, ...started.actions] };
}

function startBackground(state: SupervisionState): Decision {
  return {
    state: { ...state, phase: 'background-checkpoint', exitDuringCheckpoint: undefined },
    actions: [{ kind: 'checkpoint', checkpoint: 'background', notice: null }],
  };
}

function onBackgroundSettled(state: SupervisionState, error: string | undefined, now: number): Decision {
  if (state.phase !== 'background-checkpoint') return { state, actions: [] };
  const said = error === undefined ? [] : [log('warn', LogEvent.checkpointBackgroundFailed, 'background checkpoint failed; the task runs on', { err: error })];
  const exit = state.exitDuringCheckpoint;
  if (exit) return done(state, ...said, finish({ kind: 'task-exited', exit }));
  const running: SupervisionState = { ...state, phase: 'running' };
  const notice = state.pendingNotice;
  if (notice) {
    const final = startFinal(running, notice, now);
    return { state: final.state, actions: [...said, { kind: 'schedule-background' }, ...final.actions] };
  }
  return { state: running, actions: [...said, { kind: 'schedule-background' }] };
}

function onFinalSettled(state: SupervisionState, error: string | undefined): Decision {
  if (state.phase !== 'final-checkpoint') return { state, actions: [] };
  const exit = state.exitDuringCheckpoint;
  if (error !== undefined) {
    const said = log('error', LogEvent.checkpointFailed, 'checkpoint failed', { err: error });
    if (exit)
      return done(state, said, finish(exit.commandEnded ? { kind: 'task-exited', exit } : { kind: 'checkpoint-failed', exitCode: ExitCode.checkpointFailed }));
    // What the agent was asked meanwhile is the task's to answer now, as it would have been without spotsnap.
    const passedOn = state.signalsDuringCheckpoint.flatMap((signal): SupervisionAction[] => [
      log('info', LogEvent.signalForwarded, 'passing on the signal that came during the failed checkpoint', { signal }),
      { kind: 'forward-signal', signal },
    ]);
    return {
      state: { ...state, phase: 'running', signalsDuringCheckpoint: [] },
      actions: [said, log('warn', LogEvent.taskContinued, 'the task runs on without a checkpoint'), ...passedOn, { kind: 'watch-notices' }],
    };
  }
  // Committed. A command that ended meanwhile has its own result, which is what it would have been without spotsnap.
  if (exit?.commandEnded) return done(state, finish({ kind: 'task-exited', exit }));
  return { state: { ...state, phase: 'checkpointed' }, actions: [{ kind: 'report-final-checkpoint' }] };
}

function onFinalReported(state: SupervisionState): Decision {
  if (state.phase !== 'checkpointed') return { state, actions: [] };
  const exit = state.exitDuringCheckpoint;
  if (exit)
    return done(
      state,
      log('warn', LogEvent.taskKilledFrozen, 'the frozen task was killed after its checkpoint was committed: exiting for the retry', { reason: exit.reason }),
      finish(CHECKPOINTED),
    );
  if (state.policy.afterCheckpoint === 'exit' || state.signalsDuringCheckpoint.length > 0) return done(state, { kind: 'kill-tree' }, finish(CHECKPOINTED));
  const notice = state.finalNotice;
  if (!notice) return done(state, { kind: 'kill-tree' }, finish(CHECKPOINTED));
  return {
    state,
    actions: [
      log('info', LogEvent.taskFrozen, 'task checkpointed and frozen; waiting for the instance to be reclaimed (the next attempt resumes it)'),
      { kind: 'watch-reclaim', notice },
    ],
  };
}

function onInstanceStayed(state: SupervisionState, reason: StayReason): Decision {
  if (state.phase !== 'checkpointed') return { state, actions: [] };
  // Nothing reclaimed the instance: the frozen tree simply goes on, as if the notice had never come.
  return {
    state: { ...state, phase: 'running', finalNotice: undefined, signalsDuringCheckpoint: [], exitDuringCheckpoint: undefined },
    actions: [
      log('warn', LogEvent.instanceStayed, 'the instance was not reclaimed: the task runs on from where it was frozen', { reason }),
      { kind: 'resume-tree' },
      log('info', LogEvent.taskResumedInPlace, 'task resumed in place'),
      { kind: 'watch-notices' },
    ],
  };
}
