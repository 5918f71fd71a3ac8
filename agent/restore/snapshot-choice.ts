// Which of the job's snapshots a restore tries, in which order, and why a snapshot cannot resume this task here.
import type { AgentConfig } from '../config/config.ts';
import { chunkRefs, commandDigest, type Manifest } from '../store/manifest.ts';
import { attemptOfSnapshotId } from '../store/s3-layout.ts';
import { cannotCompute, digestAlgorithm, type ChunkDigestAlgorithm } from '../transfer/chunk-digest.ts';

/** How many committed snapshots are tried, newest first, before giving up. */
export const MAX_SNAPSHOTS_TRIED = 3;

/** The snapshots to try, newest first; or none, with the reason. */
export type SnapshotChoice = { kind: 'try'; snapshotIds: string[] } | { kind: 'none'; reason: string };

/**
 * Chooses from the job's committed snapshots: newest first, at most MAX_SNAPSHOTS_TRIED, and none taken in or
 * before the attempt in which the task last ended (`endedAttempt`): the task already ran past those and ended (a
 * failure the retry is for), so a retry starts from scratch, as without spotsnap.
 */
export function chooseSnapshots(committed: readonly string[], endedAttempt: number | undefined, jobId: string): SnapshotChoice {
  if (committed.length === 0) return { kind: 'none', reason: `no committed snapshot for job ${jobId}` };
  // Snapshot ids start with the zero-padded attempt and then the time: their order is their age.
  const newestFirst = [...committed].sort().reverse();
  const after = endedAttempt === undefined ? newestFirst : newestFirst.filter((id) => attemptOfSnapshotId(id) > endedAttempt);
  if (after.length === 0) return { kind: 'none', reason: `the task ended in attempt ${endedAttempt} after the job's snapshots were taken` };
  return { kind: 'try', snapshotIds: after.slice(0, MAX_SNAPSHOTS_TRIED) };
}

/** Why a manifest cannot resume this task here, or undefined when it can. */
export function incompatibility(
  manifest: Manifest,
  config: AgentConfig,
  command: readonly string[],
  arch: string = process.arch,
  cannotCheck: (algorithm: ChunkDigestAlgorithm) => string | undefined = cannotCompute,
): string | undefined {
  if (manifest.task.commandSha256 !== commandDigest(command)) return 'it was taken from a different command line';
  if (manifest.host.arch !== arch) return `it was taken on ${manifest.host.arch}, this is ${arch}`;
  const same = manifest.paths.length === config.paths.length && manifest.paths.every((p, i) => p === config.paths[i]);
  if (!same) return `it holds paths ${manifest.paths.join(':')} but SPOTSNAP_PATHS is ${config.paths.join(':')}`;
  if (manifest.jobId !== config.jobId) return `it belongs to job ${manifest.jobId}, this is ${config.jobId}`;
  const batch = { jobId: config.batch.jobId ?? null, arrayIndex: config.batch.arrayIndex ?? null };
  if (manifest.batch.jobId !== batch.jobId || manifest.batch.arrayIndex !== batch.arrayIndex) {
    const show = (b: { jobId: string | null; arrayIndex: number | null }) =>
      `${b.jobId ?? '(no Batch job)'}${b.arrayIndex === null ? '' : ` index ${b.arrayIndex}`}`;
    return `it was taken in AWS Batch job ${show(manifest.batch)}, this is ${show(batch)}`;
  }
  // Every chunk is checked by its digest before it is used: one this agent cannot compute is a chunk it cannot trust.
  for (const algorithm of new Set(chunkRefs(manifest).map((ref) => digestAlgorithm(ref.digest)))) {
    const why = cannotCheck(algorithm);
    if (why) return `its chunks are named by ${algorithm}, which this agent cannot check: ${why}`;
  }
  return undefined;
}
