// The supervisor's sources wired to its decisions, with fakes: a manual clock, a fake tree, notices, checkpoints and signals.
import { describe, expect, it } from 'vitest';
import { harness, INTERVAL_MS, POLL_MS, settle } from './supervisor-harness.ts';

describe('supervise', () => {
  it('passes on the signals that came before it, then ends with the task, its signal handlers removed', async () => {
    const h = harness();
    const supervising = h.start(['SIGTERM']);
    await settle();
    expect(h.tree.calls).toEqual(['signal SIGTERM']);
    h.tree.exit.resolve({ code: 143, commandEnded: true, reason: 'the task exited with 143' });
    await expect(supervising).resolves.toEqual({ kind: 'task-exited', exit: { code: 143, commandEnded: true, reason: 'the task exited with 143' } });
    expect(h.handlersRemoved()).toBe(true);
    expect(h.clock.pending).toBe(0);
  });

  it('a notice during a background checkpoint waits for it: never two checkpoints at once', async () => {
    const h = harness({ background: true });
    void h.start();
    await h.clock.advance(INTERVAL_MS);
    expect(h.checkpoints.map((c) => c.kind)).toEqual(['background']);
    h.posted.notice = h.notice();
    await h.clock.advance(POLL_MS);
    expect(h.msgs()).toContain('spot interruption notice during a background checkpoint: finishing it first');
    // Polling stops while the notice is acted on, and nothing else starts.
    await h.clock.advance(5 * POLL_MS);
    expect(h.checkpoints.map((c) => c.kind)).toEqual(['background']);
    h.checkpoints[0]!.done.resolve();
    await settle();
    expect(h.checkpoints.map((c) => c.kind)).toEqual(['background', 'final']);
    expect(h.mostInFlight()).toBe(1);
  });

  it('SIGTERM during the final checkpoint: it goes on, then the frozen tree is killed and the agent exits 177', async () => {
    const h = harness();
    h.posted.notice = h.notice();
    const supervising = h.start();
    await settle();
    expect(h.checkpoints.map((c) => c.kind)).toEqual(['final']);
    h.signal('SIGTERM');
    expect(h.tree.calls).toEqual([]);
    h.checkpoints[0]!.done.resolve();
    await expect(supervising).resolves.toEqual({ kind: 'checkpointed', exitCode: 177 });
    expect(h.reports).toEqual(['checkpointed']);
    expect(h.tree.calls).toEqual(['kill']);
  });

  it('SIGTERM during a final checkpoint that fails reaches the task, which runs on', async () => {
    const h = harness();
    h.posted.notice = h.notice();
    void h.start();
    await settle();
    h.signal('SIGTERM');
    h.checkpoints[0]!.done.reject(new Error('criu dump of PID 7 failed (exit 1)'));
    await settle();
    expect(h.tree.calls).toEqual(['signal SIGTERM']);
    expect(h.msgs()).toEqual(expect.arrayContaining(['checkpoint failed', 'the task runs on without a checkpoint']));
    expect(h.result()).toBeUndefined();
  });

  it('the instance stays: the frozen tree goes on, and the notice still posted is not acted on again', async () => {
    const h = harness();
    const notice = h.notice();
    h.posted.notice = notice;
    const supervising = h.start();
    await settle();
    h.checkpoints[0]!.done.resolve();
    await settle();
    expect(h.msgs()).toContain('task checkpointed and frozen; waiting for the instance to be reclaimed (the next attempt resumes it)');
    // Withdrawn: absent on two polls in a row.
    h.posted.notice = null;
    await h.clock.advance(2 * POLL_MS);
    expect(h.tree.calls).toEqual(['resume output', 'continue']);
    expect(h.msgs()).toContain('task resumed in place');
    // Posted again, the same notice changes nothing.
    h.posted.notice = notice;
    await h.clock.advance(10 * POLL_MS);
    expect(h.checkpoints).toHaveLength(1);
    h.tree.exit.resolve({ code: 0, commandEnded: true, reason: 'the task exited with 0' });
    await expect(supervising).resolves.toMatchObject({ kind: 'task-exited' });
  });

  it('the deadline passes with the instance still up: the frozen tree goes on', async () => {
    const h = harness();
    h.posted.notice = h.notice('2026-11-21T09:00:30Z');
    void h.start();
    await settle();
    h.checkpoints[0]!.done.resolve();
    await settle();
    // The notice stays posted, but the deadline and the grace after it pass.
    await h.clock.advance(10 * 60_000);
    expect(h.tree.calls).toEqual(['resume output', 'continue']);
    expect(h.checkpoints).toHaveLength(1);
  });

  it('SPOTSNAP_AFTER_CHECKPOINT=exit: the agent exits 177 once the checkpoint is committed and reported', async () => {
    const h = harness({ afterCheckpoint: 'exit' });
    h.posted.notice = h.notice();
    const supervising = h.start();
    await settle();
    h.checkpoints[0]!.done.resolve();
    await expect(supervising).resolves.toEqual({ kind: 'checkpointed', exitCode: 177 });
    expect(h.reports).toEqual(['checkpointed']);
    expect(h.tree.calls).toEqual(['kill']);
    expect(h.clock.pending).toBe(0);
  });

  it('the task exiting during a background checkpoint ends supervision once the checkpoint has settled', async () => {
    const h = harness({ background: true });
    const supervising = h.start();
    await h.clock.advance(INTERVAL_MS);
    h.tree.exit.resolve({ code: 0, commandEnded: true, reason: 'the task exited with 0' });
    await settle();
    expect(h.result()).toBeUndefined();
    h.checkpoints[0]!.done.reject(new Error('criu dump of PID 7 failed (exit 1)'));
    await expect(supervising).resolves.toMatchObject({ kind: 'task-exited', exit: { code: 0 } });
  });
});
