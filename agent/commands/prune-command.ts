// `spotsnap prune [--older-than 7d] [--dry-run]`: deletes finished jobs and incomplete leftovers older than an age.
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Location } from '../config.ts';
import pino from 'pino';
import { systemClock } from '../clock.ts';
import { deleteKeys, type StoredObject } from '../s3-objects.ts';
import { describeJob, listJobIds } from '../snapshot-catalog.ts';
import { TransferProgress } from '../transfer-progress.ts';
import { locationOf, parseAge, parseArgs } from './command-args.ts';
import { formatBytes } from './ls-command.ts';

export interface PrunePlan {
  /** Jobs whose task succeeded: everything of theirs goes. */
  finishedJobs: string[];
  /** Objects of checkpoints that never committed, and chunks no manifest refers to. */
  leftovers: StoredObject[];
  keys: string[];
  bytes: number;
}

/**
 * What prune would delete. Nothing younger than `olderThanMs` is touched, so a checkpoint in progress (which
 * lasts minutes at most) and the chunks it already sent are safe with any age of an hour or more.
 */
export async function planPrune(client: S3Client, location: S3Location, olderThanMs: number, now: number): Promise<PrunePlan> {
  const cutoff = now - olderThanMs;
  const plan: PrunePlan = { finishedJobs: [], leftovers: [], keys: [], bytes: 0 };
  for (const jobId of await listJobIds(client, location)) {
    const job = await describeJob(client, location, jobId);
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

export async function pruneCommand(argv: readonly string[], env: NodeJS.ProcessEnv, client: S3Client, out: (line: string) => void): Promise<number> {
  const args = parseArgs(argv, ['dry-run']);
  const location = locationOf(args, env);
  const olderThanMs = parseAge(args.flags.get('older-than'), '7d');
  const plan = await planPrune(client, location, olderThanMs, Date.now());
  const dryRun = args.flags.has('dry-run');
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
  out(`${dryRun ? 'would free' : 'freed'} ${formatBytes(plan.bytes)} in ${plan.keys.length} objects (${plan.finishedJobs.length} finished jobs, ${plan.leftovers.length} leftovers)`);
  return 0;
}
