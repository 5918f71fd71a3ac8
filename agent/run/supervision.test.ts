// The supervisor's decisions, edge by edge (starting, notices, signals): what each event means in each phase, with no clock, process or Docker.
import { describe, expect, it } from 'vitest';
import {
  checkOneCheckpointAtATime,
  deeds,
  ENDED_0,
  ev,
  IN_BACKGROUND,
  IN_FINAL,
  messages,
  NOTICE,
  run,
  T0,
  WAIT,
  WAITING_FOR_RECLAIM,
} from './supervision-script.ts';

describe('decide: starting', () => {
  it('watches for notices, and waits for the background interval unless background checkpoints are off', () => {
    expect(deeds(run([ev.start]).last)).toEqual(['watch-notices', 'schedule-background']);
    expect(deeds(run([ev.start], { ...WAIT, checkpointInterval: { mode: 'off' } }).last)).toEqual(['watch-notices']);
  });

  it('passes on the signals that came before supervision, as it does while the task runs', () => {
    const { steps } = run([ev.signal('SIGTERM'), ev.signal('SIGUSR1'), ev.start]);
    expect(steps.slice(0, 2).map(deeds)).toEqual([['forward-signal:SIGTERM'], ['forward-signal:SIGUSR1']]);
    expect(messages(steps[0]!)).toEqual(['passing the signal on to the task']);
  });

  it('ends with the task when it exits while running', () => {
    const { state, last } = run([ev.start, ev.exited(ENDED_0)]);
    expect(deeds(last)).toEqual(['finish:task-exited 0']);
    expect(state.phase).toBe('done');
  });
});

describe('decide: a notice', () => {
  it('starts the final checkpoint, saying how long before the deadline', () => {
    const { state, last } = run([ev.start, ev.notice(NOTICE, T0 + 20_000)]);
    expect(state.phase).toBe('final-checkpoint');
    expect(deeds(last)).toEqual(['checkpoint:final']);
    expect(last[0]).toEqual({
      kind: 'log',
      level: 'warn',
      event: 'notice.received',
      msg: 'spot interruption notice: checkpointing',
      fields: { action: 'terminate', time: NOTICE.time, msBeforeDeadline: 100_000 },
    });
  });

  it('during a background checkpoint: finishes it first, then checkpoints, never two dumps at once', () => {
    const events = [...IN_BACKGROUND, ev.notice(), ev.committed('background'), ev.committed('final')];
    const { steps } = run(events);
    expect(messages(steps[3]!)).toEqual(['spot interruption notice during a background checkpoint: finishing it first']);
    expect(deeds(steps[3]!)).toEqual([]);
    expect(deeds(steps[4]!)).toContain('checkpoint:final');
    expect(checkOneCheckpointAtATime(events, steps)).toBe(2);
  });

  it('during a background checkpoint that fails: says so, then checkpoints for the notice', () => {
    const events = [...IN_BACKGROUND, ev.notice(), ev.failed('background')];
    const { steps, state } = run(events);
    expect(messages(steps[4]!)).toEqual(['background checkpoint failed; the task runs on', 'spot interruption notice: checkpointing']);
    expect(state.phase).toBe('final-checkpoint');
    expect(checkOneCheckpointAtATime(events, steps)).toBe(2);
  });

  it('a notice seen again while a checkpoint is under way is not acted on twice', () => {
    const events = [...IN_BACKGROUND, ev.notice(), ev.notice(), ev.committed('background'), ev.notice(), ev.committed('final')];
    const { steps } = run(events);
    expect(steps[4]).toEqual([]);
    expect(steps[6]).toEqual([]);
    expect(checkOneCheckpointAtATime(events, steps)).toBe(2);
  });
});

describe('decide: signals during and after a final checkpoint', () => {
  it('SIGTERM during the final checkpoint: the checkpoint goes on, then the agent exits 177 (even when it would wait)', () => {
    const { steps } = run([...IN_FINAL, ev.signal('SIGTERM'), ev.committed('final'), ev.reported]);
    expect(deeds(steps[2]!)).toEqual([]);
    expect(messages(steps[2]!)).toEqual([
      'signal received during a checkpoint: the checkpoint goes on, then the agent exits (or the task gets the signal if the checkpoint fails)',
    ]);
    expect(deeds(steps[3]!)).toEqual(['report-final-checkpoint']);
    expect(deeds(steps[4]!)).toEqual(['kill-tree', 'finish:checkpointed 177']);
  });

  it('SIGTERM during a final checkpoint that fails: the task gets the signal, and runs on', () => {
    const { steps, state } = run([...IN_FINAL, ev.signal('SIGTERM'), ev.signal('SIGINT'), ev.failed('final')]);
    expect(messages(steps[4]!)).toEqual([
      'checkpoint failed',
      'the task runs on without a checkpoint',
      'passing on the signal that came during the failed checkpoint',
      'passing on the signal that came during the failed checkpoint',
    ]);
    expect(deeds(steps[4]!)).toEqual(['forward-signal:SIGTERM', 'forward-signal:SIGINT', 'watch-notices']);
    expect(state.phase).toBe('running');
    expect(state.signalsDuringCheckpoint).toEqual([]);
  });

  it('SIGTERM after the commit: the frozen tree is killed and the agent exits 177', () => {
    const { last, state } = run([...WAITING_FOR_RECLAIM, ev.signal('SIGTERM')]);
    expect(messages(last)).toEqual(['signal received after the checkpoint was committed: exiting for the retry']);
    expect(deeds(last)).toEqual(['kill-tree', 'finish:checkpointed 177']);
    expect(state.phase).toBe('done');
  });

  it('SIGTERM after the commit, while its report is being stored, exits at once', () => {
    const { last } = run([...IN_FINAL, ev.committed('final'), ev.signal('SIGTERM')]);
    expect(deeds(last)).toEqual(['kill-tree', 'finish:checkpointed 177']);
  });
});
