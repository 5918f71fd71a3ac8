// `spotsnap ls [--job ID] [--json]`: the snapshots under the prefix, committed or incomplete.
import type { S3Client } from '@aws-sdk/client-s3';
import { attemptOfSnapshotId } from '../store/s3-layout.ts';
import { describeJob, listJobIds, type SnapshotEntry } from '../store/snapshot-catalog.ts';
import { locationOf } from './command-args.ts';

export interface LsOptions {
  /** The prefix; SPOTSNAP_S3_URI when undefined. */
  s3?: string | undefined;
  /** Only this job's snapshots. */
  job?: string | undefined;
  json: boolean;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function snapshotRow(s: SnapshotEntry): Record<string, string | number> {
  return {
    job: s.jobId,
    snapshot: s.snapshotId,
    attempt: s.manifest?.attempt ?? attemptOfSnapshotId(s.snapshotId),
    kind: s.manifest?.checkpointKind ?? '-',
    time: (s.manifest ? new Date(s.manifest.createdAt) : s.lastModified).toISOString(),
    size: s.bytes,
    state: s.unreadable ? 'unreadable' : s.state,
  };
}

export async function lsCommand(options: LsOptions, env: NodeJS.ProcessEnv, client: S3Client, out: (line: string) => void): Promise<number> {
  const location = locationOf(options.s3, env);
  const jobIds = options.job !== undefined ? [options.job] : await listJobIds(client, location);
  const rows: Array<Record<string, string | number>> = [];
  for (const jobId of jobIds) {
    const entry = await describeJob(client, location, jobId);
    rows.push(...entry.snapshots.map(snapshotRow));
    if (entry.finished)
      rows.push({ job: jobId, snapshot: '-', attempt: '-', kind: '-', time: entry.finished.lastModified.toISOString(), size: 0, state: 'finished' });
  }
  if (options.json) {
    out(JSON.stringify(rows, null, 2));
    return 0;
  }
  if (rows.length === 0) {
    out(`no snapshots under s3://${location.bucket}/${location.prefix}`);
    return 0;
  }
  const table = rows.map((r) => [
    String(r.job),
    String(r.snapshot),
    String(r.attempt),
    String(r.kind),
    String(r.time),
    typeof r.size === 'number' ? formatBytes(r.size) : '-',
    String(r.state),
  ]);
  const header = ['JOB', 'SNAPSHOT', 'ATTEMPT', 'KIND', 'TIME', 'SIZE', 'STATE'];
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  for (const row of [header, ...table])
    out(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
  return 0;
}
