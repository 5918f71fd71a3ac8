import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useS3StandIn } from '../../test/support/unit-s3.ts';
import type { AttemptReport } from '../run/attempt-report.ts';
import { renderReportChart, reportCommand, summarizeJob } from './report-command.ts';

const { client } = await useS3StandIn('unit-report');

function attempt(n: number, extra: Partial<AttemptReport> = {}): AttemptReport {
  return {
    jobId: 'j',
    attempt: n,
    finishedAt: '2026-11-21T10:00:00Z',
    outcome: 'checkpointed',
    exitCode: 177,
    interruptionsSurvived: n,
    preserved: { runMs: n === 1 ? 0 : 60_000 * (n - 1), cpuMs: 30_000 * (n - 1) },
    task: { runMs: 60_000 * n, cpuMs: 30_000 * n },
    checkpoints: [{ snapshotId: `s${n}`, kind: 'final', totalMs: 2000, uploadedBytes: 1048576, uploadedChunks: 1, uploadedPacks: 1, totalBytes: 4 * 1048576 }],
    restore:
      n === 1
        ? null
        : { snapshotId: `s${n - 1}`, fromAttempt: n - 1, totalMs: 1500, downloadMs: 1000, criuRestoreMs: 200, preservedRunMs: 60_000, preservedCpuMs: 30_000 },
    bytes: { uploaded: 1048576, stored: 4 * 1048576 },
    cost: { instancePerHour: 1, preservedCompute: 0.01, s3: 0.001, saved: 0.009 },
    ...extra,
  };
}

describe('spotsnap report', () => {
  it("folds a job's attempts into one line", () => {
    const last = attempt(3, { outcome: 'exited', exitCode: 0, interruptionsSurvived: 2, checkpoints: [] });
    expect(summarizeJob('j', [attempt(2), attempt(1), last])).toEqual({
      jobId: 'j',
      attempts: 3,
      interruptions: 2,
      exitCode: 0,
      runMs: 180_000,
      preservedRunMs: 180_000,
      preservedCpuMs: 90_000,
      checkpointMs: 4000,
      restoreMs: 3000,
      uploadedBytes: 3 * 1048576,
      savedUsd: 0.027,
    });
    expect(renderReportChart([summarizeJob('j', [attempt(1)])])).toMatch(/^<svg .*Where the time went, per job.*<\/svg>\n$/s);
  });

  it("reads every job's reports under the prefix", async () => {
    const bucket = 'unit-report';
    const prefix = `r-${randomUUID().slice(0, 8)}`;
    for (const [job, n] of [
      ['job-a', 1],
      ['job-a', 2],
      ['job-b', 1],
    ] as const) {
      await client.send(
        new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${job}/reports/a000${n}.json`, Body: JSON.stringify(attempt(n, { jobId: job })) }),
      );
    }
    const lines: string[] = [];
    expect(await reportCommand({ s3: `s3://${bucket}/${prefix}`, json: false }, {}, client, (l) => lines.push(l))).toBe(0);
    expect(lines[0]).toMatch(/^JOB\s+ATTEMPTS\s+INTERRUPTIONS/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 3))).toEqual([
      ['job-a', '2', '2'],
      ['job-b', '1', '1'],
      ['TOTAL', '3', '3'],
    ]);
  });
});
