// End to end: a task interrupted by a spot notice is checkpointed to S3 and resumes in a fresh container.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import { agentEvent, agentEvents, FRESH_START_EVENTS, memoryTaskSteps, runToCompletion, runUntilCheckpointOnceStarted } from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { s3Endpoint, bucket, imds, s3 } = useStandIns({ bucket: 'e2e-resume' });

const tasks = [
  {
    name: 'a single process with in-memory state',
    command: ['python3', '/opt/spotsnap/samples/memory-task.py', '96', '50', '0.1'],
    finished: /^final [0-9a-f]{64}$/m,
  },
  {
    name: 'a process tree joined by pipes writing a compressed file',
    command: ['sh', '/opt/spotsnap/samples/pipeline-task.sh', '250', '0.02'],
    finished: /^pipeline done: 250 lines/m,
  },
  {
    name: 'a task appending to a file it keeps open in its working directory',
    command: ['sh', '/opt/spotsnap/samples/append-task.sh', '90', '0.05'],
    finished: /^journal done: 90 entries/m,
  },
];

describe('a task interrupted by a spot notice resumes on the next attempt', () => {
  it.each(tasks)('$name', async ({ command, finished }) => {
    const uninterrupted = await runToCompletion(command, {});
    expect(uninterrupted.exitCode).toBe(0);
    expect(uninterrupted.stdout).toMatch(finished);

    const jobId = `resume-${randomUUID()}`;
    const env = (attempt: number) => jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt });
    const first = await runUntilCheckpointOnceStarted(command, env(1), /^task started/m, () => imds.scheduleNotice(0));
    imds.clearNotice();
    // Interrupted mid-run: it had started and had not finished.
    expect(first.stdout).toMatch(/^task started/);
    expect(first.stdout).not.toMatch(finished);

    const second = await runToCompletion(command, env(2));
    const events = agentEvents(second.stderr);
    expect(events).toContain(LogEvent.restoreDone);
    for (const fresh of FRESH_START_EVENTS) expect(events).not.toContain(fresh);
    // CRIU read the memory images as they streamed from S3, every byte of them, none landing in the work dir first.
    const started = agentEvent(second.stderr, LogEvent.restoreStarted);
    const streamed = agentEvent(second.stderr, LogEvent.restoreStreamed);
    expect(started?.streamed).toBe(true);
    expect(started?.streamedBytes).toBeGreaterThan(0);
    expect(streamed?.unfinished).toEqual([]);
    expect(streamed?.bytes).toBeGreaterThan(started?.streamedBytes as number);
    // It did not start over: the start line is printed once, in the first attempt.
    expect(second.stdout).not.toMatch(/task started/);
    expect(second.exitCode).toBe(0);
    // Together the two attempts printed exactly what the uninterrupted run printed, final checksums included.
    expect(first.stdout + second.stdout).toBe(uninterrupted.stdout);

    // The task succeeded: its chunks are gone from S3; the manifest, CRIU log, reports and end markers stay as a record.
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `snapshots/${jobId}/` }));
    const names = (listed.Contents ?? []).map((o) => o.Key!.split('/').pop()).sort();
    expect(names).toEqual(['a0001.json', 'a0002.json', 'criu-dump.log', 'ended.json', 'finished.json', 'manifest.json']);
  });

  it('survives three interruptions in a row, each attempt restored from the one before', async () => {
    // 120 steps: three attempts of 12 steps each and the time their notices take leave the last one work to do.
    const command = ['python3', '/opt/spotsnap/samples/memory-task.py', '64', '120', '0.1'];
    const uninterrupted = await runToCompletion(command, {});
    const jobId = `thrice-${randomUUID()}`;
    const env = (attempt: number) => ({ ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt }), SPOTSNAP_INSTANCE_PRICE_PER_HOUR: '0.40' });

    const interrupted = [];
    for (const attempt of [1, 2, 3]) {
      // The notice once 12 steps ran in this attempt (1.2 s of the task's time at least), however long its start
      // or restore took; the wait ends once the attempt's report is stored (it follows the commit), so that
      // `spotsnap report` sees every attempt.
      interrupted.push(await runUntilCheckpointOnceStarted(command, env(attempt), memoryTaskSteps(12), () => imds.scheduleNotice(0)));
    }
    imds.clearNotice();
    const last = await runToCompletion(command, env(4));

    for (const [i, run] of [...interrupted.slice(1), last].entries()) {
      const restored = agentEvent(run.stderr, LogEvent.restoreDone);
      expect(restored?.fromAttempt).toBe(i + 1);
      expect(run.stdout.length).toBeGreaterThan(0);
    }
    expect(last.exitCode).toBe(0);
    expect(interrupted.map((r) => r.stdout).join('') + last.stdout).toBe(uninterrupted.stdout);

    // Each attempt ended with one summary line and a report; the last says what the interruptions cost and kept.
    const summary = agentEvent(last.stderr, LogEvent.attemptReported);
    expect(summary?.msg).toMatch(/^spotsnap report: attempt 4 exited with 0; 3 interruption\(s\) survived/);
    const report = summary?.report as { preserved: { runMs: number; cpuMs: number }; cost: { saved: number } | null; restore: { fromAttempt: number } };
    expect(report.restore.fromAttempt).toBe(3);
    expect(report.preserved.runMs).toBeGreaterThan(3000);
    expect(report.preserved.cpuMs).toBeGreaterThan(0);
    expect(report.cost).not.toBeNull();
    const table = await runToCompletion(
      ['report', `s3://${bucket}/snapshots`, '--json'],
      jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt: 1 }),
      60_000,
      ['/opt/spotsnap/bin/spotsnap'],
    );
    const job = (JSON.parse(table.stdout) as Array<{ jobId: string; attempts: number; interruptions: number; exitCode: number }>).find(
      (j) => j.jobId === jobId,
    );
    expect(job).toMatchObject({ attempts: 4, interruptions: 3, exitCode: 0 });
  });
});
