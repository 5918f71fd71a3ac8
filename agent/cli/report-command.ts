// `spotsnap report [s3://BUCKET/PREFIX] [--json] [--svg FILE]`: what spotsnap saved over a pipeline run.
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { writeFile } from 'node:fs/promises';
import type { AttemptReport } from '../run/attempt-report.ts';
import { listAll } from '../store/s3-objects.ts';
import { jobReportsPrefix } from '../store/s3-layout.ts';
import { listJobIds } from '../store/snapshot-catalog.ts';
import { locationOf } from './command-args.ts';

export interface ReportOptions {
  /** The prefix; SPOTSNAP_S3_URI when undefined. */
  s3?: string | undefined;
  json: boolean;
  /** Where to write the chart, if anywhere. */
  svg?: string | undefined;
}

export interface JobSummary {
  jobId: string;
  attempts: number;
  interruptions: number;
  exitCode: number | null;
  runMs: number;
  preservedRunMs: number;
  preservedCpuMs: number;
  checkpointMs: number;
  restoreMs: number;
  uploadedBytes: number;
  savedUsd: number | null;
}

/** Folds one job's attempt reports into a line of the report. */
export function summarizeJob(jobId: string, reports: readonly AttemptReport[]): JobSummary {
  const sorted = [...reports].sort((a, b) => a.attempt - b.attempt);
  const last = sorted.at(-1);
  const costs = sorted.map((r) => r.cost?.saved).filter((c): c is number => c !== undefined);
  return {
    jobId,
    attempts: sorted.length,
    interruptions: Math.max(0, ...sorted.map((r) => r.interruptionsSurvived)),
    exitCode: last?.outcome === 'exited' ? last.exitCode : null,
    runMs: Math.max(0, ...sorted.map((r) => r.task.runMs)),
    preservedRunMs: sorted.reduce((s, r) => s + r.preserved.runMs, 0),
    preservedCpuMs: sorted.reduce((s, r) => s + r.preserved.cpuMs, 0),
    checkpointMs: sorted.reduce((s, r) => s + r.checkpoints.reduce((t, c) => t + c.totalMs, 0), 0),
    restoreMs: sorted.reduce((s, r) => s + (r.restore?.totalMs ?? 0), 0),
    uploadedBytes: sorted.reduce((s, r) => s + r.bytes.uploaded, 0),
    savedUsd: costs.length > 0 ? Math.round(costs.reduce((s, c) => s + c, 0) * 1e4) / 1e4 : null,
  };
}

/** A bar per job: its run time, split into work kept across interruptions and time spent on checkpoints and restores. */
export function renderReportChart(jobs: readonly JobSummary[]): string {
  const left = 260;
  const width = 900;
  const plot = width - left - 40;
  const max = Math.max(1, ...jobs.map((j) => j.runMs + j.checkpointMs + j.restoreMs));
  const rows = jobs.map((j, i) => {
    const y = 50 + i * 26;
    const seg = (x: number, ms: number, color: string) =>
      `<rect x="${(left + (x / max) * plot).toFixed(1)}" y="${y}" width="${((ms / max) * plot).toFixed(1)}" height="18" fill="${color}"/>`;
    const kept = Math.min(j.preservedRunMs, j.runMs);
    return [
      `<text x="${left - 8}" y="${y + 13}" text-anchor="end">${j.jobId.slice(0, 36).replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>`,
      seg(0, j.runMs - kept, '#2563eb'),
      seg(j.runMs - kept, kept, '#16a34a'),
      seg(j.runMs, j.checkpointMs, '#f59e0b'),
      seg(j.runMs + j.checkpointMs, j.restoreMs, '#ef4444'),
    ].join('');
  });
  const legend = [
    ['#2563eb', 'task running'],
    ['#16a34a', 'work kept across interruptions'],
    ['#f59e0b', 'checkpoints'],
    ['#ef4444', 'restores'],
  ]
    .map(
      ([color, label], i) =>
        `<rect x="${10 + i * 220}" y="${60 + jobs.length * 26}" width="12" height="12" fill="${color}"/><text x="${28 + i * 220}" y="${71 + jobs.length * 26}">${label}</text>`,
    )
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${90 + jobs.length * 26}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="10" y="24" font-size="15" font-weight="bold">Where the time went, per job</text>${rows.join('')}${legend}</svg>\n`;
}

async function readReports(client: S3Client, bucket: string, prefix: string): Promise<AttemptReport[]> {
  const keys = (await listAll(client, bucket, prefix)).objects.map((o) => o.key).filter((k) => k.endsWith('.json'));
  return Promise.all(
    keys.map(async (Key) => JSON.parse(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body!.transformToString()) as AttemptReport),
  );
}

export async function reportCommand(options: ReportOptions, env: NodeJS.ProcessEnv, client: S3Client, out: (line: string) => void): Promise<number> {
  const location = locationOf(options.s3, env);
  const jobs: JobSummary[] = [];
  for (const jobId of await listJobIds(client, location)) {
    const reports = await readReports(client, location.bucket, jobReportsPrefix(location, jobId));
    if (reports.length > 0) jobs.push(summarizeJob(jobId, reports));
  }
  const { svg } = options;
  if (svg !== undefined) await writeFile(svg, renderReportChart(jobs));
  if (options.json) {
    out(JSON.stringify(jobs, null, 2));
    return 0;
  }
  const min = (ms: number) => (ms / 60_000).toFixed(1);
  const header = ['JOB', 'ATTEMPTS', 'INTERRUPTIONS', 'EXIT', 'RUN MIN', 'KEPT MIN', 'KEPT CPU MIN', 'CHECKPOINT S', 'RESTORE S', 'SENT MIB', 'SAVED USD'];
  const rows = jobs.map((j) => [
    j.jobId,
    String(j.attempts),
    String(j.interruptions),
    j.exitCode === null ? '-' : String(j.exitCode),
    min(j.runMs),
    min(j.preservedRunMs),
    min(j.preservedCpuMs),
    (j.checkpointMs / 1000).toFixed(1),
    (j.restoreMs / 1000).toFixed(1),
    (j.uploadedBytes / 1048576).toFixed(1),
    j.savedUsd === null ? '-' : j.savedUsd.toFixed(4),
  ]);
  const sum = (f: (j: JobSummary) => number) => jobs.reduce((s, j) => s + f(j), 0);
  const saved = jobs.some((j) => j.savedUsd !== null) ? sum((j) => j.savedUsd ?? 0).toFixed(4) : '-';
  rows.push([
    'TOTAL',
    String(sum((j) => j.attempts)),
    String(sum((j) => j.interruptions)),
    '',
    min(sum((j) => j.runMs)),
    min(sum((j) => j.preservedRunMs)),
    min(sum((j) => j.preservedCpuMs)),
    (sum((j) => j.checkpointMs) / 1000).toFixed(1),
    (sum((j) => j.restoreMs) / 1000).toFixed(1),
    (sum((j) => j.uploadedBytes) / 1048576).toFixed(1),
    saved,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows])
    out(
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
  if (svg !== undefined) out(`chart written to ${svg}`);
  return 0;
}
