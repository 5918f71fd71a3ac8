import { describe, expect, it } from 'vitest';
import { sampleManifest } from '../../test/support/sample-manifest.ts';
import { buildReport, s3Cost, summaryLine, type AttemptRecord } from './attempt-report.ts';
import { readConfig, type AgentConfig } from '../config/config.ts';

function config(extra: Record<string, string> = {}): AgentConfig {
  const result = readConfig(
    { SPOTSNAP_ENABLED: 'true', SPOTSNAP_S3_URI: 's3://bucket/p', AWS_BATCH_JOB_ID: 'job-1', AWS_BATCH_JOB_ATTEMPT: '2', ...extra },
    '/work',
  );
  if (result.kind !== 'enabled') throw new Error('bad test config');
  return result.config;
}

const restored: AttemptRecord = {
  restore: { snapshotId: 's', fromAttempt: 1, totalMs: 1500, downloadMs: 1000, criuRestoreMs: 300, preservedRunMs: 3_600_000, preservedCpuMs: 1_800_000 },
  checkpoints: [{ snapshotId: 't', kind: 'final', totalMs: 2000, uploadedBytes: 50e6, uploadedChunks: 30, uploadedPacks: 30, totalBytes: 1e9 }],
  latest: sampleManifest({
    task: { ...sampleManifest().task, interruptions: 1 },
    transfer: { uploadedBytes: 50e6, uploadedChunks: 30, uploadedPacks: 30, totalBytes: 1e9, totalChunks: 600, storedBytes: 50e6 },
  }),
};

describe('buildReport', () => {
  it('counts the work kept, the bytes, and what it saved at the given prices', () => {
    const r = buildReport(
      config({ SPOTSNAP_INSTANCE_PRICE_PER_HOUR: '0.5' }),
      restored,
      { outcome: 'exited', exitCode: 0, usage: { runMs: 7_200_000, cpuMs: 3_000_000 }, attemptMs: 3_600_000 },
      new Date('2026-11-21T10:00:00Z'),
    );
    expect(r).toMatchObject({
      jobId: 'job-1',
      attempt: 2,
      outcome: 'exited',
      exitCode: 0,
      interruptionsSurvived: 1,
      preserved: { runMs: 3_600_000, cpuMs: 1_800_000 },
    });
    expect(r.bytes).toEqual({ uploaded: 50e6, stored: 1e9 });
    const s3 = s3Cost(config().prices, 32, 1e9, 1);
    expect(r.cost).toEqual({ instancePerHour: 0.5, preservedCompute: 0.5, s3: Math.round(s3 * 1e6) / 1e6, saved: Math.round((0.5 - s3) * 1e6) / 1e6 });
    expect(summaryLine(r)).toBe(
      'spotsnap report: attempt 2 exited with 0; 1 interruption(s) survived; 60.0 min of run time (30.0 min CPU) not redone; 1 checkpoint(s), 47.7 MiB sent, about $0.4998 saved',
    );
  });

  it('gives no cost without an instance price, and nothing preserved on a fresh start', () => {
    const r = buildReport(
      config(),
      { checkpoints: [] },
      { outcome: 'checkpointed', exitCode: 177, usage: { runMs: 1000, cpuMs: 500 }, attemptMs: 1000 },
      new Date(),
    );
    expect(r.cost).toBeNull();
    expect(r.preserved).toEqual({ runMs: 0, cpuMs: 0 });
    expect(r.restore).toBeNull();
  });
});
