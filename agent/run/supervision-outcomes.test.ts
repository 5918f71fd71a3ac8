// The supervisor's decisions, edge by edge (commits, stays, failures, exits mid-dump, background checkpoints): pure, no Docker.
import { describe, expect, it } from 'vitest';
import { decide } from './supervision.ts';
import { AUTO_BACKGROUND_MAX_BYTES, type SupervisionPolicy } from './supervision-types.ts';
import {
  checkOneCheckpointAtATime,
  deeds,
  ENDED_0,
  ev,
  IN_BACKGROUND,
  IN_FINAL,
  KILLED,
  messages,
  NOTICE,
  OTHER_NOTICE,
  run,
  WAIT,
  WAITING_FOR_RECLAIM,
} from './supervision-script.ts';

describe('decide: the final checkpoint committed', () => {
  it('waits for the reclaim once the report is stored', () => {
    const { steps, state } = run(WAITING_FOR_RECLAIM);
    expect(deeds(steps[2]!)).toEqual(['report-final-checkpoint']);
    expect(messages(steps[3]!)).toEqual(['task checkpointed and frozen; waiting for the instance to be reclaimed (the next attempt resumes it)']);
    expect(steps[3]!.at(-1)).toEqual({ kind: 'watch-reclaim', notice: NOTICE });
    expect(state.phase).toBe('checkpointed');
  });

  it('with SPOTSNAP_AFTER_CHECKPOINT=exit, kills the frozen tree and exits 177', () => {
    const { last } = run([...IN_FINAL, ev.committed('final'), ev.reported], { ...WAIT, afterCheckpoint: 'exit' });
    expect(deeds(last)).toEqual(['kill-tree', 'finish:checkpointed 177']);
  });

  it('exits 177 when the frozen tree is killed from outside', () => {
    const { last } = run([...WAITING_FOR_RECLAIM, ev.exited(KILLED)]);
    expect(messages(last)).toEqual(['the frozen task was killed after its checkpoint was committed: exiting for the retry']);
    expect(deeds(last)).toEqual(['finish:checkpointed 177']);
  });
});

describe('decide: the instance stays', () => {
  for (const reason of ['notice-withdrawn', 'deadline-passed'] as const) {
    it(`(${reason}): the frozen tree is continued, and the same notice is never acted on again`, () => {
      const { steps, state } = run([...WAITING_FOR_RECLAIM, ev.stayed(reason), ev.notice(), ev.due(), ev.dirty()]);
      const stayed = steps[4]!;
      expect(messages(stayed)).toEqual(['the instance was not reclaimed: the task runs on from where it was frozen', 'task resumed in place']);
      expect(stayed[0]).toMatchObject({ fields: { reason } });
      expect(deeds(stayed)).toEqual(['resume-tree', 'watch-notices']);
      expect(steps[5]).toEqual([]);
      // It runs as before: background checkpoints go on.
      expect(deeds(steps[7]!)).toEqual(['checkpoint:background']);
      expect(state.phase).toBe('background-checkpoint');
    });
  }

  it('a new notice after the stay is acted on', () => {
    const { last } = run([...WAITING_FOR_RECLAIM, ev.stayed(), ev.notice(OTHER_NOTICE)]);
    expect(deeds(last)).toEqual(['checkpoint:final']);
  });
});

describe('decide: a checkpoint fails', () => {
  it('the final one: the task runs on, notices are watched again, and the same notice is not acted on again', () => {
    const { steps, state } = run([...IN_FINAL, ev.failed('final'), ev.notice()]);
    expect(messages(steps[2]!)).toEqual(['checkpoint failed', 'the task runs on without a checkpoint']);
    expect(steps[2]![0]).toMatchObject({ level: 'error', fields: { err: 'criu dump of PID 7 failed (exit 1)' } });
    expect(deeds(steps[2]!)).toEqual(['watch-notices']);
    expect(steps[3]).toEqual([]);
    expect(state.phase).toBe('running');
  });

  it('a background one: the task runs on and the next one is scheduled', () => {
    const { last, state } = run([...IN_BACKGROUND, ev.failed('background')]);
    expect(messages(last)).toEqual(['background checkpoint failed; the task runs on']);
    expect(deeds(last)).toEqual(['schedule-background']);
    expect(state.phase).toBe('running');
  });
});

describe('decide: the task exits during a dump', () => {
  it('a background one: the result waits until the checkpoint settles, and a pending notice is dropped', () => {
    const { steps } = run([...IN_BACKGROUND, ev.notice(), ev.exited(ENDED_0), ev.committed('background')]);
    expect(steps[4]).toEqual([]);
    expect(deeds(steps[5]!)).toEqual(['finish:task-exited 0']);
  });

  it("a background one that fails: the task's own result", () => {
    const { last } = run([...IN_BACKGROUND, ev.exited({ code: 3, commandEnded: true, reason: 'the task exited with 3' }), ev.failed('background')]);
    expect(deeds(last)).toEqual(['finish:task-exited 3']);
  });

  it("a final one that fails: the command's own result when it ended, else 175", () => {
    expect(deeds(run([...IN_FINAL, ev.exited(ENDED_0), ev.failed('final')]).last)).toEqual(['finish:task-exited 0']);
    const killed = run([...IN_FINAL, ev.exited(KILLED), ev.failed('final')]);
    expect(messages(killed.last)).toEqual(['checkpoint failed']);
    expect(deeds(killed.last)).toEqual(['finish:checkpoint-failed 175']);
  });

  it("a final one that commits: the command's own result when it ended, else 177 once the report is stored", () => {
    expect(deeds(run([...IN_FINAL, ev.exited(ENDED_0), ev.committed('final')]).last)).toEqual(['finish:task-exited 0']);
    const killed = run([...IN_FINAL, ev.exited(KILLED), ev.committed('final'), ev.reported]);
    expect(deeds(killed.steps[3]!)).toEqual(['report-final-checkpoint']);
    expect(messages(killed.last)).toEqual(['the frozen task was killed after its checkpoint was committed: exiting for the retry']);
    expect(deeds(killed.last)).toEqual(['finish:checkpointed 177']);
  });
});

describe('decide: background checkpoints', () => {
  it('asks about dirty memory tracking once, when the first is due, then takes them', () => {
    const { steps } = run([ev.start, ev.due(), ev.dirty(true), ev.committed('background'), ev.due()]);
    expect(deeds(steps[1]!)).toEqual(['ask-dirty-tracking']);
    expect(messages(steps[2]!)).toEqual([
      'the kernel tracks dirty memory, but spotsnap does not use criu pre-dump yet: background checkpoints are full dumps, deduplicated by chunk',
    ]);
    expect(deeds(steps[2]!)).toEqual(['checkpoint:background']);
    expect(deeds(steps[3]!)).toEqual(['schedule-background']);
    expect(deeds(steps[4]!)).toEqual(['checkpoint:background']);
  });

  it('takes none while another checkpoint is under way or the tree is frozen', () => {
    expect(deeds(run([...IN_FINAL, ev.due()]).last)).toEqual(['schedule-background']);
    expect(deeds(run([...WAITING_FOR_RECLAIM, ev.due()]).last)).toEqual(['schedule-background']);
  });

  it('a notice while dirty tracking is asked about wins: the answer is logged, no background checkpoint follows', () => {
    const events = [ev.start, ev.due(), ev.notice(), ev.dirty(false)];
    const { last, steps } = run(events);
    expect(messages(last)).toEqual(['no dirty memory tracking on this kernel: background checkpoints are full dumps, deduplicated by chunk']);
    expect(deeds(last)).toEqual(['schedule-background']);
    expect(checkOneCheckpointAtATime(events, steps)).toBe(1);
  });

  it('auto: none for a task above the size limit, said once; taken again once it is smaller', () => {
    const auto: SupervisionPolicy = { ...WAIT, checkpointInterval: { mode: 'auto' } };
    const big = AUTO_BACKGROUND_MAX_BYTES + 1;
    const { steps } = run([ev.start, ev.due(big), ev.due(big), ev.due(AUTO_BACKGROUND_MAX_BYTES)], auto);
    expect(messages(steps[1]!)).toEqual(['no background checkpoints for a task this large (set SPOTSNAP_CHECKPOINT_INTERVAL to force them)']);
    expect(deeds(steps[1]!)).toEqual(['schedule-background']);
    expect(steps[2]).toEqual([{ kind: 'schedule-background' }]);
    expect(deeds(steps[3]!)).toEqual(['ask-dirty-tracking']);
  });

  it('a fixed interval checkpoints whatever the size', () => {
    expect(deeds(run([ev.start, ev.due(AUTO_BACKGROUND_MAX_BYTES * 4)]).last)).toEqual(['ask-dirty-tracking']);
  });
});

describe('decide: after the end', () => {
  it('changes nothing', () => {
    const ended = run([ev.start, ev.exited(ENDED_0)]).state;
    for (const event of [ev.signal('SIGTERM'), ev.notice(), ev.due(), ev.committed('final'), ev.reported, ev.stayed(), ev.exited(KILLED)]) {
      expect(decide(ended, event)).toEqual({ state: ended, actions: [] });
    }
  });
});
