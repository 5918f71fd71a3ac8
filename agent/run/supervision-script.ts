// Test fixtures for the supervisor's decisions: sample notices and exits, events, and a runner that folds decide() over them.
import type { SpotNotice } from '../notice/spot-notice.ts';
import type { TaskExit } from '../task/task-tree.ts';
import { decide } from './supervision.ts';
import { initialState, type SupervisionAction, type SupervisionEvent, type SupervisionPolicy, type SupervisionState } from './supervision-types.ts';

export const T0 = Date.parse('2026-11-21T09:00:00Z');
export const NOTICE: SpotNotice = { action: 'terminate', time: '2026-11-21T09:02:00Z', deadline: T0 + 120_000, id: 'terminate@2026-11-21T09:02:00Z' };
export const OTHER_NOTICE: SpotNotice = { action: 'terminate', time: '2026-11-21T10:02:00Z', deadline: T0 + 3_720_000, id: 'terminate@2026-11-21T10:02:00Z' };
export const ENDED_0: TaskExit = { code: 0, commandEnded: true, reason: 'the task exited with 0' };
export const KILLED: TaskExit = { code: 137, commandEnded: false, reason: "the task's namespace ended without a status (exit 137)" };
export const WAIT: SupervisionPolicy = { checkpointInterval: { mode: 'every', ms: 60_000 }, afterCheckpoint: 'wait' };

export const ev = {
  start: { kind: 'start' } as const,
  signal: (signal: NodeJS.Signals): SupervisionEvent => ({ kind: 'signal', signal }),
  exited: (exit: TaskExit): SupervisionEvent => ({ kind: 'task-exited', exit }),
  notice: (notice: SpotNotice = NOTICE, now = T0): SupervisionEvent => ({ kind: 'notice', notice, now }),
  due: (residentBytes?: number): SupervisionEvent => ({ kind: 'background-due', residentBytes }),
  dirty: (available = false): SupervisionEvent => ({ kind: 'dirty-tracking', available }),
  committed: (checkpoint: 'final' | 'background'): SupervisionEvent => ({ kind: 'checkpoint-settled', checkpoint, now: T0 + 5_000 }),
  failed: (checkpoint: 'final' | 'background', error = 'criu dump of PID 7 failed (exit 1)'): SupervisionEvent => ({
    kind: 'checkpoint-settled',
    checkpoint,
    error,
    now: T0 + 5_000,
  }),
  reported: { kind: 'final-reported' } as const,
  stayed: (reason: 'notice-withdrawn' | 'deadline-passed' = 'notice-withdrawn'): SupervisionEvent => ({ kind: 'instance-stayed', reason }),
};

/** Feeds the events in order; returns the state at the end and each event's actions. */
export function run(events: SupervisionEvent[], policy: SupervisionPolicy = WAIT, from?: SupervisionState) {
  let state = from ?? initialState(policy);
  const steps: SupervisionAction[][] = [];
  for (const event of events) {
    const decision = decide(state, event);
    state = decision.state;
    steps.push(decision.actions);
  }
  return { state, steps, last: steps.at(-1) ?? [], all: steps.flat() };
}

/** The actions that are not log lines, as `kind` or `kind:detail`. */
export function deeds(actions: SupervisionAction[]): string[] {
  return actions
    .filter((a) => a.kind !== 'log')
    .map((a) => {
      if (a.kind === 'checkpoint') return `checkpoint:${a.checkpoint}`;
      if (a.kind === 'forward-signal') return `forward-signal:${a.signal}`;
      if (a.kind === 'finish')
        return `finish:${a.result.kind === 'task-exited' ? `task-exited ${a.result.exit.code}` : `${a.result.kind} ${a.result.exitCode}`}`;
      return a.kind;
    });
}

export function messages(actions: SupervisionAction[]): string[] {
  return actions.flatMap((a) => (a.kind === 'log' ? [a.msg] : []));
}

/** Throws when a checkpoint is started while another has not settled: one CRIU operation at a time. */
export function checkOneCheckpointAtATime(events: SupervisionEvent[], steps: SupervisionAction[][]): number {
  let inFlight = 0;
  let started = 0;
  events.forEach((event, i) => {
    if (event.kind === 'checkpoint-settled') inFlight--;
    for (const action of steps[i]!) {
      if (action.kind !== 'checkpoint') continue;
      if (inFlight > 0) throw new Error(`a ${action.checkpoint} checkpoint started during another (after event ${i}: ${event.kind})`);
      inFlight++;
      started++;
    }
  });
  return started;
}

/** Running, with a background checkpoint under way. */
export const IN_BACKGROUND = [ev.start, ev.due(), ev.dirty()];
/** Running, with the notice's final checkpoint under way. */
export const IN_FINAL = [ev.start, ev.notice()];
/** The final checkpoint committed and reported: frozen, waiting for the reclaim. */
export const WAITING_FOR_RECLAIM = [...IN_FINAL, ev.committed('final'), ev.reported];
