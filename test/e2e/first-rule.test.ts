// End to end: the first rule under real conditions: restores that fail fall back, frozen trees always run on, notices act once.
import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import {
  agentEvent,
  agentEvents,
  agentLog,
  CHECKPOINTED_FOR_NEXT_ATTEMPT,
  eventLine,
  FRESH_START_EVENTS,
  collect,
  runToCompletion,
  runUntilCheckpoint,
  signalAndCollect,
  runPrepared,
  taskContainer,
  waitForExit,
  waitForLog,
  type AttemptOutput,
} from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';
import type { StartedTestContainer } from 'testcontainers';

const { bucket, imds, proxy } = useStandIns({ bucket: 'e2e-first-rule', proxy: true });

/** The test tasks of test/tasks, on Python's full standard library. */
const IMAGE = 'spotsnap-py:dev';
const fallbackTask = ['python3', '/opt/spotsnap-tests/fallback-task.py', '60', '0.1'];
const CRASH_MARK = '/etc/spotsnap-test/crash-when-restored';
const FAIL_MARK = '/etc/spotsnap-test/fail-when-restored';
/** A file of the test image that the task holds open: it is referenced by the snapshot, not copied. */
const HELD_FILE = '/opt/spotsnap-tests/make-input.py';

afterEach(() => {
  proxy.clearFaults();
  imds.clearNotice();
});

function envFor(jobId: string, attempt: number, overrides: Record<string, string> = {}): Record<string, string> {
  return { ...jobEnv({ s3Endpoint: proxy.url, imdsUrl: imds.url, bucket, jobId, attempt }), ...overrides };
}

describe('a restore that cannot be used is never a failed job', () => {
  const failures: Array<{ name: string; prepare: Parameters<typeof runPrepared>[2]; env: Record<string, string>; reason: RegExp }> = [
    {
      name: 'CRIU refuses to run (a bad option)',
      prepare: {},
      env: { SPOTSNAP_CRIU_EXTRA_ARGS: '--no-such-criu-option' },
      reason: /criu restore failed/,
    },
    {
      name: 'a mount the task had is missing in the new container',
      prepare: {},
      env: {},
      reason: /criu restore failed/,
    },
    {
      name: 'a file the task had open from the image has another size',
      prepare: { files: [{ content: "not the image's copy", target: HELD_FILE }] },
      env: {},
      reason: new RegExp(`the task had ${HELD_FILE} open \\(\\d+ bytes`),
    },
    {
      name: 'the restored task crashes at once',
      prepare: { files: [{ content: 'crash\n', target: CRASH_MARK }] },
      env: {},
      reason: /the restored task ended at once/,
    },
  ];

  it.each(failures)('$name: the next attempt starts from scratch, from a clean state, and succeeds', async ({ name, prepare, env, reason }) => {
    const uninterrupted = await runToCompletion(fallbackTask, {}, 120_000, undefined, IMAGE);
    expect(uninterrupted.exitCode).toBe(0);
    const jobId = `fallback-${randomUUID()}`;
    // The first attempt runs with a scratch mount (which the "missing mount" case leaves out of the second), and
    // holds a file from the image open (which the "another size" case replaces in the second).
    const firstCommand = ['sh', '-c', `exec 7<${HELD_FILE}; exec "$@"`, 'sh', ...fallbackTask];
    imds.scheduleNotice(2500);
    const first = await runUntilCheckpoint(firstCommand, envFor(jobId, 1), undefined, 120_000, IMAGE, { '/scratch': 'rw,size=4m' });
    imds.clearNotice();
    expect(agentEvents(first.stderr)).toContain(LogEvent.checkpointCommitted);

    const secondPrepare = name.startsWith('a mount') ? prepare : { ...prepare, tmpfs: { '/scratch': 'rw,size=4m' } };
    const second = await runPrepared(firstCommand, envFor(jobId, 2, env), secondPrepare, IMAGE);
    const log = agentLog(second.stderr);
    const refused = log.find((l) => l.event === LogEvent.restoreSnapshotFailed);
    expect(String(refused?.err)).toMatch(reason);
    expect(log.map((l) => l.event)).toContain(LogEvent.restoreFellBack);
    // Never exit 70, never a failed job: the task ran from scratch, found none of the first attempt's files, and
    // printed exactly what an uninterrupted run prints.
    expect(second.exitCode).toBe(0);
    expect(second.stdout).not.toMatch(/leftover from an earlier attempt/);
    expect(second.stdout).toBe(uninterrupted.stdout);
  });

  it('exits with 176 instead under SPOTSNAP_ON_RESTORE_FAILURE=fail, without starting the task', async () => {
    const jobId = `fallback-fail-${randomUUID()}`;
    imds.scheduleNotice(2500);
    await runUntilCheckpoint(fallbackTask, envFor(jobId, 1), undefined, 120_000, IMAGE);
    imds.clearNotice();
    const second = await runPrepared(
      fallbackTask,
      envFor(jobId, 2, { SPOTSNAP_ON_RESTORE_FAILURE: 'fail' }),
      {
        files: [{ content: 'crash\n', target: CRASH_MARK }],
      },
      IMAGE,
    );
    expect(second.exitCode).toBe(176);
    expect(second.stdout).toBe('');
  });
});

describe('a task that ended is never resumed from before its end', () => {
  it('starts the retry after a failure from scratch, as a retry without spotsnap would', async () => {
    const uninterrupted = await runToCompletion(fallbackTask, {}, 120_000, undefined, IMAGE);
    const jobId = `ended-${randomUUID()}`;
    imds.scheduleNotice(2500);
    await runUntilCheckpoint(fallbackTask, envFor(jobId, 1), undefined, 120_000, IMAGE);
    imds.clearNotice();
    // Attempt 2 resumes the task, which then fails (exit 3) on its own.
    const second = await runPrepared(fallbackTask, envFor(jobId, 2), { files: [{ content: 'fail\n', target: FAIL_MARK }] }, IMAGE);
    expect(agentEvents(second.stderr)).toContain(LogEvent.restoreDone);
    expect(second.exitCode).toBe(3);
    // Attempt 3, the retry for that failure, does not resume attempt 1's snapshot again: it starts over.
    const third = await runToCompletion(fallbackTask, envFor(jobId, 3), 120_000, undefined, IMAGE);
    const started = agentEvent(third.stderr, LogEvent.taskFreshStart);
    expect(String(started?.reasons)).toMatch(/the task ended in attempt 2/);
    expect(third.exitCode).toBe(0);
    expect(third.stdout).toBe(uninterrupted.stdout);
  });
});

describe('frozen trees always run on', () => {
  it('continues children forked by a worker thread after each background checkpoint', async () => {
    const command = ['python3', '/opt/spotsnap-tests/thread-fork-task.py', '40', '0.25'];
    const uninterrupted = await runToCompletion(command, {}, 120_000, undefined, IMAGE);
    expect(uninterrupted.stdout).toMatch(/this task's own: True/);
    const result = await runToCompletion(command, envFor(`thread-fork-${randomUUID()}`, 1, { SPOTSNAP_CHECKPOINT_INTERVAL: '5s' }), 120_000, undefined, IMAGE);
    const committed = agentLog(result.stderr).filter((l) => l.event === LogEvent.checkpointCommitted && l.checkpoint === 'background');
    expect(committed.length).toBeGreaterThan(0);
    expect(result.exitCode).toBe(0);
    // The task's /proc is its own PID namespace's, and the shell forked by the worker thread ran every tick.
    expect(result.stdout).toBe(uninterrupted.stdout);
  });

  it('lets the task run while a background checkpoint uploads over a slow link', async () => {
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/packs/' }, action: { kind: 'delay', ms: 700 }, times: 100 });
    const command = ['python3', '/opt/spotsnap/samples/memory-task.py', '96', '80', '0.1'];
    const uninterrupted = await runToCompletion(command, {});
    const container = await taskContainer(command, envFor(`slow-link-${randomUUID()}`, 1, { SPOTSNAP_CHECKPOINT_INTERVAL: '5s' })).start();
    let logs: { stdout: string; stderr: string };
    try {
      await waitForExit(container, 120_000);
      logs = await execa('docker', ['logs', '--timestamps', container.getId()], { reject: false });
      expect((await collect(container)).stdout).toBe(uninterrupted.stdout);
    } finally {
      await container.stop({ remove: true, timeout: 0 });
    }
    // Ordered by the container's own timestamps: the task printed steps after it was let go and before the
    // checkpoint's upload was over.
    const lines = `${logs.stdout}\n${logs.stderr}`.split('\n').filter(Boolean).sort();
    const ranOn = lines.findIndex((l) => eventLine(LogEvent.checkpointThawed).test(l));
    const committed = lines.findIndex((l, i) => i > ranOn && eventLine(LogEvent.checkpointCommitted).test(l));
    expect(ranOn).toBeGreaterThan(-1);
    expect(committed).toBeGreaterThan(ranOn);
    expect(lines.slice(ranOn, committed).filter((l) => / step \d+\/80 /.test(l)).length).toBeGreaterThan(0);
  });
});

/**
 * Checkpoints a long task in attempt 1, then starts attempt 2 with slow pack reads and returns its container once
 * the restore is downloading (and so still busy for a few seconds).
 */
async function secondAttemptRestoringSlowly(name: string): Promise<StartedTestContainer> {
  const command = ['python3', '/opt/spotsnap/samples/memory-task.py', '64', '600', '0.1'];
  const jobId = `${name}-${randomUUID()}`;
  imds.scheduleNotice(2500);
  await runUntilCheckpoint(command, envFor(jobId, 1));
  imds.clearNotice();
  proxy.addFault({ match: { method: 'GET', pathIncludes: '/packs/' }, action: { kind: 'delay', ms: 3000 }, times: 2 });
  const container = await taskContainer(command, envFor(jobId, 2)).start();
  try {
    await waitForLog(container, eventLine(LogEvent.restoreStarted), 60_000);
  } catch (error) {
    await container.stop({ remove: true, timeout: 0 });
    throw error;
  }
  return container;
}

describe('signals and a silent S3 around the task', () => {
  it('passes a SIGTERM that came during the restore on to the task once it runs', async () => {
    const container = await secondAttemptRestoringSlowly('sigterm-restore');
    let result: AttemptOutput;
    try {
      result = await signalAndCollect(container, 'TERM', 120_000);
    } finally {
      await container.stop({ remove: true, timeout: 0 });
    }
    const events = agentEvents(result.stderr);
    expect(events).toContain(LogEvent.signalDeferred);
    expect(events).toContain(LogEvent.restoreDone);
    for (const fresh of FRESH_START_EVENTS) expect(events).not.toContain(fresh);
    // The restored task got it, and ended by it as it would have without spotsnap.
    expect(result.exitCode).toBe(143);
  });

  it('checkpoints again, once the task runs, for a notice that came during the restore', async () => {
    const container = await secondAttemptRestoringSlowly('notice-restore');
    let result: AttemptOutput;
    try {
      imds.scheduleNotice(0);
      await waitForLog(container, CHECKPOINTED_FOR_NEXT_ATTEMPT, 120_000);
      await execa('docker', ['kill', '--signal', 'KILL', container.getId()], { reject: false });
      result = await collect(container);
    } finally {
      imds.clearNotice();
      await container.stop({ remove: true, timeout: 0 });
    }
    const events = agentEvents(result.stderr);
    expect(events.indexOf(LogEvent.restoreDone)).toBeGreaterThan(-1);
    expect(events.indexOf(LogEvent.noticeReceived)).toBeGreaterThan(events.indexOf(LogEvent.restoreDone));
    expect(agentEvents(result.stderr).filter((e) => e === LogEvent.checkpointCommitted)).toHaveLength(1);
  });

  it('runs the task when S3 accepts connections and never answers', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    try {
      const result = await runToCompletion(['sh', '-c', 'echo task ran'], { ...envFor(`silent-${randomUUID()}`, 1), AWS_ENDPOINT_URL_S3: endpoint }, 240_000);
      expect(result.stdout).toBe('task ran\n');
      expect(result.exitCode).toBe(0);
      const started = agentEvent(result.stderr, LogEvent.restoreFellBack);
      expect(String(started?.reasons)).toMatch(/looking up the job's snapshots did not finish within 60 s/);
      expect(agentEvents(result.stderr)).toContain(LogEvent.attemptEndTimedOut);
    } finally {
      silent.close();
    }
  }, 300_000);
});

describe('a notice acts once', () => {
  it('checkpoints once for a notice whose deadline passed without a reclaim, then lets the task finish here', async () => {
    const command = ['python3', '/opt/spotsnap/samples/memory-task.py', '64', '60', '0.1'];
    const uninterrupted = await runToCompletion(command, {});
    // A notice whose time is already more than the grace period past: the instance evidently stays.
    imds.scheduleNotice(2000, 'terminate', -90);
    const container = await taskContainer(command, envFor(`stays-${randomUUID()}`, 1)).start();
    let result: AttemptOutput;
    try {
      await waitForLog(container, eventLine(LogEvent.taskResumedInPlace), 60_000);
      await waitForExit(container, 120_000);
      result = await collect(container);
    } finally {
      await container.stop({ remove: true, timeout: 0 });
    }
    expect(agentEvents(result.stderr).filter((e) => e === LogEvent.checkpointCommitted)).toHaveLength(1);
    expect(agentEvents(result.stderr).filter((e) => e === LogEvent.noticeReceived)).toHaveLength(1);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(uninterrupted.stdout);
  });

  it('passes a SIGTERM that came during a final checkpoint on to the task when the checkpoint fails', async () => {
    // The first packs are slow, so that the SIGTERM lands during the checkpoint; every later one is refused, and
    // so is every object of the snapshot itself (its CRIU log, its manifest): however few packs the task's
    // memory compresses to, the checkpoint fails.
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/packs/' }, action: { kind: 'delay', ms: 4000 }, times: 2 });
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/packs/' }, action: { kind: 'status', status: 403, code: 'AccessDenied' }, times: 1000 });
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/snapshots/' }, action: { kind: 'status', status: 403, code: 'AccessDenied' }, times: 1000 });
    imds.scheduleNotice(2000);
    const command = ['python3', '/opt/spotsnap/samples/memory-task.py', '64', '600', '0.1'];
    const container = await taskContainer(command, envFor(`sigterm-fails-${randomUUID()}`, 1)).start();
    let result: AttemptOutput;
    try {
      await waitForLog(container, eventLine(LogEvent.noticeReceived), 60_000);
      result = await signalAndCollect(container, 'TERM', 120_000);
    } finally {
      await container.stop({ remove: true, timeout: 0 });
    }
    // The signal that came during the checkpoint is passed on after it failed.
    const events = agentEvents(result.stderr);
    const failed = events.indexOf(LogEvent.checkpointFailed);
    expect(failed).toBeGreaterThan(-1);
    expect(events.indexOf(LogEvent.signalForwarded, failed)).toBeGreaterThan(failed);
    // Python's default for SIGTERM: killed by it, as it would have been without spotsnap.
    expect(result.exitCode).toBe(143);
    expect(result.stdout).not.toMatch(/^final /m);
  });
});
