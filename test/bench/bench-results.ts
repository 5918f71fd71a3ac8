// The benchmark's figures for one task size, their ratios against the targets, and the Markdown table of them.

/** What one task size measured: raw CRIU and S3 limits, the naive pipeline, and spotsnap's checkpoints and restore. */
export interface SizeResult {
  mib: number;
  imageBytes: number;
  rawDumpMs: number;
  rawUploadMs: number;
  rawDownloadMs: number;
  rawRestoreMs: number;
  naive: { dumpMs: number; tarMs: number; uploadMs: number; totalMs: number };
  first: { totalMs: number; uploadedBytes: number; agentPeakRssBytes: number };
  second: { totalMs: number; uploadedBytes: number; agentPeakRssBytes: number };
  restore: { totalMs: number; agentPeakRssBytes: number };
}

/** The ratios the targets are stated in (README, Performance). */
export function ratios(r: SizeResult) {
  return {
    firstVsLimit: r.first.totalMs / Math.max(r.rawDumpMs, r.rawUploadMs),
    naiveVsFirst: r.naive.totalMs / r.first.totalMs,
    secondBytesShare: r.second.uploadedBytes / r.first.uploadedBytes,
    restoreVsRaw: r.restore.totalMs / (r.rawDownloadMs + r.rawRestoreMs),
    peakRssMiB: Math.max(r.first.agentPeakRssBytes, r.second.agentPeakRssBytes, r.restore.agentPeakRssBytes) / 1048576,
  };
}

/** The results as a Markdown table, one row per task size. */
export function resultsTable(results: SizeResult[]): string {
  const mib = (b: number) => (b / 1048576).toFixed(0);
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const lines = [
    '| task | images MiB | raw dump s | raw upload s | naive s | first checkpoint s | vs max(raw) (target <= 1.15) | naive / first (target >= 2) | second s | second sent MiB (share, target <= 15%) | raw download + restore s | restore s | vs raw (target <= 1.3) | agent peak RSS MiB (target <= 128) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    const q = ratios(r);
    lines.push(
      `| ${r.mib} MiB | ${mib(r.imageBytes)} | ${s(r.rawDumpMs)} | ${s(r.rawUploadMs)} | ${s(r.naive.totalMs)} | ${s(r.first.totalMs)} | ${q.firstVsLimit.toFixed(2)} | ${q.naiveVsFirst.toFixed(2)} | ${s(r.second.totalMs)} | ${mib(r.second.uploadedBytes)} (${(q.secondBytesShare * 100).toFixed(1)}%) | ${s(r.rawDownloadMs + r.rawRestoreMs)} | ${s(r.restore.totalMs)} | ${q.restoreVsRaw.toFixed(2)} | ${q.peakRssMiB.toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}
