// `spotsnap inspect JOB [SNAPSHOT] [--json]`: one manifest in readable form (the newest committed one by default).
import type { S3Client } from '@aws-sdk/client-s3';
import { describeJob } from '../store/snapshot-catalog.ts';
import { locationOf } from './command-args.ts';
import { formatBytes } from './ls-command.ts';

export interface InspectOptions {
  jobId: string;
  /** The job's newest committed snapshot when undefined. */
  snapshotId?: string | undefined;
  /** The prefix; SPOTSNAP_S3_URI when undefined. */
  s3?: string | undefined;
  json: boolean;
}

/** Prints the manifest; a job or snapshot that is not there is an operational failure (exit 1), not a usage error. */
export async function inspectCommand(options: InspectOptions, env: NodeJS.ProcessEnv, client: S3Client, out: (line: string) => void): Promise<number> {
  const { jobId, snapshotId } = options;
  const location = locationOf(options.s3, env);
  const job = await describeJob(client, location, jobId);
  const snapshot = snapshotId ? job.snapshots.find((s) => s.snapshotId === snapshotId) : job.snapshots.find((s) => s.manifest);
  if (!snapshot) {
    const known = job.snapshots.map((s) => s.snapshotId).join(', ') || 'none';
    throw new Error(
      `no ${snapshotId ? `snapshot ${JSON.stringify(snapshotId)}` : 'committed snapshot'} for job ${JSON.stringify(jobId)} (snapshots: ${known})`,
    );
  }
  const m = snapshot.manifest;
  if (!m) {
    out(`${snapshot.snapshotId}: ${snapshot.unreadable ? `manifest unreadable: ${snapshot.unreadable}` : 'incomplete (no manifest): never restored'}`);
    return snapshot.unreadable ? 1 : 0;
  }
  if (options.json) {
    out(JSON.stringify(m, null, 2));
    return 0;
  }
  const imageBytes = m.images.reduce((s, f) => s + f.bytes, 0);
  const lines: Array<[string, string]> = [
    ['job', `${m.jobId}, attempt ${m.attempt}`],
    ['snapshot', `${m.snapshotId} (${m.checkpointKind}), committed ${m.createdAt}`],
    ['notice', m.notice ? `${m.notice.action}, deadline ${m.notice.time}` : 'none (background checkpoint)'],
    ['agent / CRIU', `${m.agentVersion} / ${m.criu.version}, kernel ${m.host.kernel} (${m.host.arch})`],
    ['memory images', `${formatBytes(imageBytes)} in ${m.images.length} files, ${m.images.reduce((s, f) => s + f.chunks.length, 0)} chunks`],
    ['files', `${formatBytes(m.files.bytes)} under ${m.paths.join(':')}, ${m.files.chunks.length} chunks`],
    [
      'sent',
      `${formatBytes(m.transfer.uploadedBytes)} of ${formatBytes(m.transfer.totalBytes)} (${m.transfer.uploadedChunks} of ${m.transfer.totalChunks} chunks new, in ${m.transfer.uploadedPacks} packs)`,
    ],
    ['timings', `dump ${m.timings.dumpMs} ms, upload ${m.timings.uploadMs} ms, total ${m.timings.totalMs} ms`],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  for (const [key, value] of lines) out(`${key.padEnd(width)}  ${value}`);
  return 0;
}
