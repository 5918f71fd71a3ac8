// `spotsnap inspect JOB [SNAPSHOT] [--json]`: one manifest in readable form (the newest committed one by default).
import type { S3Client } from '@aws-sdk/client-s3';
import { describeJob } from '../store/snapshot-catalog.ts';
import { locationOf, parseArgs, UsageError } from './command-args.ts';
import { formatBytes } from './ls-command.ts';

export async function inspectCommand(argv: readonly string[], env: NodeJS.ProcessEnv, client: S3Client, out: (line: string) => void): Promise<number> {
  const args = parseArgs(argv, ['json']);
  const [jobId, snapshotId] = args.positional;
  if (!jobId) throw new UsageError('spotsnap inspect needs a job id: spotsnap inspect JOB [SNAPSHOT] [--json]');
  const location = locationOf(args, env);
  const job = await describeJob(client, location, jobId);
  const snapshot = snapshotId ? job.snapshots.find((s) => s.snapshotId === snapshotId) : job.snapshots.find((s) => s.manifest);
  if (!snapshot) {
    const known = job.snapshots.map((s) => s.snapshotId).join(', ') || 'none';
    throw new UsageError(
      `no ${snapshotId ? `snapshot ${JSON.stringify(snapshotId)}` : 'committed snapshot'} for job ${JSON.stringify(jobId)} (snapshots: ${known})`,
    );
  }
  const m = snapshot.manifest;
  if (!m) {
    out(`${snapshot.snapshotId}: ${snapshot.unreadable ? `manifest unreadable: ${snapshot.unreadable}` : 'incomplete (no manifest): never restored'}`);
    return snapshot.unreadable ? 1 : 0;
  }
  if (args.flags.has('json')) {
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
