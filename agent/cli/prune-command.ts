// `spotsnap prune [--older-than 7d] [--dry-run]`: deletes finished jobs and incomplete leftovers older than an age, failing closed.
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Location } from '../config/config.ts';
import pino from 'pino';
import { systemClock } from '../shared/clock.ts';
import { deleteKeys, type StoredObject } from '../store/s3-objects.ts';
import { describeJob, listJobIds } from '../store/snapshot-catalog.ts';
import { TransferProgress } from '../transfer/transfer-progress.ts';
import { locationOf, parseAge } from './command-args.ts';
import { formatBytes } from './ls-command.ts';

/** A job prune leaves whole, because a committed manifest of it could not be read. */
export interface SkippedJob {
  jobId: string;
  /** `<snapshot id>: <why its manifest could not be read>`, for each such manifest. */
  reasons: string[];
}

export interface PrunePlan {
  /** Jobs whose task succeeded: everything of theirs goes. */
  finishedJobs: string[];
  /**
   * Jobs of which nothing is deleted: a committed manifest could not be read (written by a newer spotsnap,
   * a transient error, access denied to it or its KMS key), so which packs it needs is not known.
   */
  skippedJobs: SkippedJob[];
  /** Objects of checkpoints that never committed, and chunks no manifest refers to. */
  leftovers: StoredObject[];
  keys: string[];
  bytes: number;
}

/**
 * What prune would delete. Nothing younger than `olderThanMs` is touched, so a checkpoint in progress (which
 * lasts minutes at most) and the chunks it already sent are safe with any age of an hour or more. Nothing of a
 * job with an unreadable committed manifest is touched either (fail closed).
 */
export async function planPrune(client: S3Client, location: S3Location, olderThanMs: number, now: number): Promise<PrunePlan> {
  const cutoff = now - olderThanMs;
  const plan: PrunePlan = { finishedJobs: [], skippedJobs: [], leftovers: [], keys: [], bytes: 0 };
  for (const jobId of await listJobIds(client, location)) {
    const job = await describeJob(client, location, jobId);
    const unreadable = job.snapshots.filter((s) => s.unreadable !== undefined);
    if (unreadable.length > 0) {
      plan.skippedJobs.push({ jobId, reasons: unreadable.map((s) => `${s.snapshotId}: ${s.unreadable}`) });
      continue;
    }
    if (job.finished && job.lastModified.getTime() < cutoff) {
      plan.finishedJobs.push(jobId);
      const all = [job.finished, ...job.packs, ...job.snapshots.flatMap((s) => s.objects)];
      plan.keys.push(...all.map((o) => o.key));
      plan.bytes += all.reduce((s, o) => s + o.bytes, 0);
      continue;
    }
    const stale = [
      ...job.snapshots.filter((s) => s.state === 'incomplete' && s.lastModified.getTime() < cutoff).flatMap((s) => s.objects),
      ...job.orphanPacks.filter((c) => c.lastModified.getTime() < cutoff),
    ];
    plan.leftovers.push(...stale);
    plan.keys.push(...stale.map((o) => o.key));
    plan.bytes += stale.reduce((s, o) => s + o.bytes, 0);
  }
  return plan;
}

export interface PruneOptions {
  /** The prefix; SPOTSNAP_S3_URI when undefined. */
  s3?: string | undefined;
  /** An age like 30m, 12h or 7d (the default). */
  olderThan?: string | undefined;
  dryRun: boolean;
}

export async function pruneCommand(options: PruneOptions, env: NodeJS.ProcessEnv, client: S3Client, out: (line: string) => void): Promise<number> {
  const location = locationOf(options.s3, env);
  const olderThanMs = parseAge(options.olderThan, '7d');
  const plan = await planPrune(client, location, olderThanMs, Date.now());
  const { dryRun } = options;
  for (const job of plan.skippedJobs) {
    out(`skipping job ${job.jobId}: nothing of it is deleted, because a committed manifest could not be read (${job.reasons.join('; ')})`);
  }
  for (const jobId of plan.finishedJobs) out(`${dryRun ? 'would delete' : 'deleting'} finished job ${jobId}`);
  for (const o of plan.leftovers) out(`${dryRun ? 'would delete' : 'deleting'} leftover ${o.key} (${formatBytes(o.bytes)})`);
  if (!dryRun) {
    let deleted = 0;
    // A bar on a terminal; otherwise the lines below are the progress.
    const progress = new TransferProgress({
      clock: systemClock,
      log: pino({ level: 'silent' }),
      label: 'prune',
      bytes: () => deleted,
      total: () => plan.keys.length,
      unit: 'objects',
      terminal: process.stderr,
    });
    try {
      await deleteKeys(client, location.bucket, plan.keys, (done) => {
        deleted = done;
        if (!process.stderr.isTTY) out(`deleted ${deleted} of ${plan.keys.length} objects`);
      });
    } finally {
      progress.stop();
    }
  }
  const skipped = plan.skippedJobs.length > 0 ? `, ${plan.skippedJobs.length} jobs skipped` : '';
  out(
    `${dryRun ? 'would free' : 'freed'} ${formatBytes(plan.bytes)} in ${plan.keys.length} objects (${plan.finishedJobs.length} finished jobs, ${plan.leftovers.length} leftovers${skipped})`,
  );
  if (plan.skippedJobs.length === 0) return 0;
  out(
    `${plan.skippedJobs.length} jobs were left whole because a committed manifest of theirs could not be read: ` +
      'check read access to it (and kms:Decrypt for its key), or upgrade spotsnap if a newer one wrote it, then run prune again',
  );
  return 1;
}
