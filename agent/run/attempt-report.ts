// What one attempt of a job did and saved: checkpoints, restore, work not redone, bytes, and a cost estimate.
import type { AgentConfig, Prices } from '../config/config.ts';
import type { Manifest } from '../store/manifest.ts';

/** Collected while the attempt runs. */
export interface AttemptRecord {
  /** The snapshot this attempt resumed from, and how long that took. */
  restore?: {
    snapshotId: string;
    fromAttempt: number;
    totalMs: number;
    downloadMs: number;
    criuRestoreMs: number;
    preservedRunMs: number;
    preservedCpuMs: number;
  };
  checkpoints: Array<{
    snapshotId: string;
    kind: 'final' | 'background';
    totalMs: number;
    uploadedBytes: number;
    uploadedChunks: number;
    uploadedPacks: number;
    totalBytes: number;
  }>;
  /** Latest committed manifest of the job, for the bytes stored. */
  latest?: Manifest;
}

export interface AttemptReport {
  jobId: string;
  attempt: number;
  finishedAt: string;
  /** How the attempt ended: the task exited, or it was checkpointed for the next attempt. */
  outcome: 'exited' | 'checkpointed';
  exitCode: number;
  /** Interruptions the task has come through so far (each a committed final checkpoint). */
  interruptionsSurvived: number;
  /** Work this attempt did not redo: the task's run and CPU time held by the snapshot it resumed from. */
  preserved: { runMs: number; cpuMs: number };
  /** The task's totals over all attempts. */
  task: { runMs: number; cpuMs: number };
  checkpoints: AttemptRecord['checkpoints'];
  restore: AttemptRecord['restore'] | null;
  bytes: { uploaded: number; stored: number };
  /** USD; null without SPOTSNAP_INSTANCE_PRICE_PER_HOUR. */
  cost: { instancePerHour: number; preservedCompute: number; s3: number; saved: number } | null;
}

/** S3's cost of this attempt: its PUT requests, and the stored bytes for as long as the attempt ran. */
export function s3Cost(prices: Prices, puts: number, storedBytes: number, hours: number): number {
  return (puts / 1000) * prices.s3Per1000Puts + (storedBytes / 1e9) * prices.s3PerGbMonth * (hours / 730);
}

export function buildReport(
  config: AgentConfig,
  record: AttemptRecord,
  end: { outcome: 'exited' | 'checkpointed'; exitCode: number; usage: { runMs: number; cpuMs: number }; attemptMs: number },
  now: Date,
): AttemptReport {
  const uploaded = record.checkpoints.reduce((s, c) => s + c.uploadedBytes, 0);
  // Each chunk is one PUT; a checkpoint adds its CRIU log and its manifest.
  const puts = record.checkpoints.reduce((s, c) => s + c.uploadedPacks + 2, 0);
  const stored = record.latest?.transfer.totalBytes ?? 0;
  const preserved = { runMs: record.restore?.preservedRunMs ?? 0, cpuMs: record.restore?.preservedCpuMs ?? 0 };
  const price = config.prices.instancePerHour;
  const s3 = s3Cost(config.prices, puts, stored, end.attemptMs / 3_600_000);
  const round = (usd: number) => Math.round(usd * 1e6) / 1e6;
  return {
    jobId: config.jobId,
    attempt: config.attempt,
    finishedAt: now.toISOString(),
    outcome: end.outcome,
    exitCode: end.exitCode,
    interruptionsSurvived: record.latest?.task.interruptions ?? 0,
    preserved,
    task: end.usage,
    checkpoints: record.checkpoints,
    restore: record.restore ?? null,
    bytes: { uploaded, stored },
    cost:
      price === undefined
        ? null
        : {
            instancePerHour: price,
            preservedCompute: round((preserved.runMs / 3_600_000) * price),
            s3: round(s3),
            saved: round((preserved.runMs / 3_600_000) * price - s3),
          },
  };
}

/** The one summary line of the log. */
export function summaryLine(r: AttemptReport): string {
  const min = (ms: number) => `${(ms / 60_000).toFixed(1)} min`;
  const saved = r.cost ? `, about $${r.cost.saved.toFixed(4)} saved` : '';
  return (
    `spotsnap report: attempt ${r.attempt} ${r.outcome === 'exited' ? `exited with ${r.exitCode}` : 'checkpointed for the next attempt'}; ` +
    `${r.interruptionsSurvived} interruption(s) survived; ${min(r.preserved.runMs)} of run time (${min(r.preserved.cpuMs)} CPU) not redone; ` +
    `${r.checkpoints.length} checkpoint(s), ${(r.bytes.uploaded / 1048576).toFixed(1)} MiB sent${saved}`
  );
}
