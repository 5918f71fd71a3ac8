// The benchmark's figures for one task (size and kind of memory), their ratios against the targets, and the Markdown table of them.
import type { PlainTransfer } from './bench-limits.ts';

/** The kinds of memory a bench task holds: incompressible bytes, or lines of bases that zstd shrinks about 3.5:1. */
export type MemoryKind = 'random' | 'text';

/** What one task measured: the plain limits, and spotsnap's checkpoints and restore, in one run against one server. */
export interface CaseResult {
  mib: number;
  kind: MemoryKind;
  imageBytes: number;
  limits: {
    /** Plain `criu dump` of the same task to tmpfs. */
    dumpMs: number;
    /** Plain unsigned PUTs of 8 MiB pieces of the image bytes, at the fastest in-flight count (which). */
    uploadMs: number;
    uploadInFlight: number;
    /** Plain ranged GETs of them back, at the fastest in-flight count. */
    downloadMs: number;
    downloadInFlight: number;
    /** Plain `criu restore` from tmpfs in a fresh container. */
    restoreMs: number;
  };
  first: Checkpoint;
  second: Checkpoint;
  restore: { totalMs: number; agentPeakRssBytes: number };
  background: { frozenMs: number; totalMs: number; workDirPeakBytes: number; agentPeakRssBytes: number };
}

/** One checkpoint as the agent logged and the manifest recorded it. */
export interface Checkpoint {
  totalMs: number;
  /** Raw bytes of the chunks S3 did not have, and bytes sent for them (compressed where that paid). */
  uploadedBytes: number;
  storedBytes: number;
  cpuSecondsPerGiB: number;
  workers: number;
  cores: number;
  workDirPeakBytes: number;
  agentPeakRssBytes: number;
}

/** A checkpoint's figures from the agent's `checkpoint.committed` log line, with the agent's peak RSS measured beside it. */
export function checkpointFromLog(line: Record<string, unknown>, agentPeakRssBytes: number): Checkpoint & { frozenMs: number } {
  return {
    totalMs: Number(line.totalMs),
    frozenMs: Number(line.frozenMs),
    uploadedBytes: Number(line.uploadedBytes),
    storedBytes: Number(line.storedBytes),
    cpuSecondsPerGiB: Number(line.cpuSecondsPerGiB),
    workers: Number(line.workers),
    cores: Number(line.cores),
    workDirPeakBytes: Number(line.workDirPeakBytes),
    agentPeakRssBytes,
  };
}

/**
 * The first background checkpoint of the whole task among `committed`: one whose images are within 5% of the
 * plain dump's (an earlier one may catch the task still filling its memory).
 */
export function wholeTaskCheckpoint<T extends Record<string, unknown>>(committed: readonly T[], imageBytes: number): T | undefined {
  return committed.find((l) => Number(l.imageBytes) >= imageBytes * 0.95);
}

/** The plain limits of a case: the faster dump and restore, and the fastest upload and download. */
export function limitsOf(dumpMs: number, restoreMs: number, up: PlainTransfer, down: PlainTransfer): CaseResult['limits'] {
  return {
    dumpMs,
    uploadMs: Math.round(up.seconds * 1000),
    uploadInFlight: up.inFlight,
    downloadMs: Math.round(down.seconds * 1000),
    downloadInFlight: down.inFlight,
    restoreMs,
  };
}

/** What a background checkpoint's figures say of the freeze, the time and the memory. */
export function backgroundOf(c: Checkpoint & { frozenMs: number }): CaseResult['background'] {
  return { frozenMs: c.frozenMs, totalMs: c.totalMs, workDirPeakBytes: c.workDirPeakBytes, agentPeakRssBytes: c.agentPeakRssBytes };
}

/** One line of spotsnap's own times in a case, for the run's log. */
export function spotsnapTimes(r: CaseResult): string {
  return `spotsnap: first ${r.first.totalMs} ms, second ${r.second.totalMs} ms, restore ${r.restore.totalMs} ms, background freeze ${r.background.frozenMs} ms`;
}

/** The targets of issue 13, each as a ratio or a figure measured in the same run. */
export function ratios(r: CaseResult) {
  const limit = Math.max(r.limits.dumpMs, r.limits.uploadMs);
  const mibOfTask = r.mib;
  return {
    /** First checkpoint over the slower plain limit: target <= 1.15. */
    firstVsLimit: r.first.totalMs / limit,
    /** First checkpoint over the plain upload of the raw bytes: target < 1 with compressible memory. */
    firstVsUpload: r.first.totalMs / r.limits.uploadMs,
    /** First checkpoint over dump + upload one after the other (what streaming saves). */
    firstVsSum: r.first.totalMs / (r.limits.dumpMs + r.limits.uploadMs),
    /** Bytes the second checkpoint sent over the first's: target <= 15%. */
    secondShare: r.second.storedBytes / r.first.storedBytes,
    /** Restore over plain download + plain restore: target <= 1.3. */
    restoreVsLimit: r.restore.totalMs / (r.limits.downloadMs + r.limits.restoreMs),
    /** Agent CPU per GiB: target <= 1.0. */
    cpuSecondsPerGiB: Math.max(r.first.cpuSecondsPerGiB, r.second.cpuSecondsPerGiB),
    /** Agent peak RSS, the largest of the four containers' (the background checkpoint's too): target <= 128 MiB at 2 cores. */
    peakRssMiB: Math.max(r.first.agentPeakRssBytes, r.second.agentPeakRssBytes, r.restore.agentPeakRssBytes, r.background.agentPeakRssBytes) / 1048576,
    /** Work dir peak over its target, 64 MiB + 1% of the task's memory: target <= 1. */
    workDirVsTarget: r.first.workDirPeakBytes / ((64 + mibOfTask / 100) * 1048576),
    /** Background checkpoint's freeze over a plain dump: target <= 1.3. */
    freezeVsDump: r.background.frozenMs / r.limits.dumpMs,
  };
}

const s = (ms: number) => (ms / 1000).toFixed(2);
const mib = (b: number) => (b / 1048576).toFixed(0);
const x = (v: number) => v.toFixed(2);

/** The results as two Markdown tables, one row per task: checkpoints, then restore and the rest. */
export function resultsTable(results: CaseResult[]): string {
  const lines = [
    '| task | images MiB | plain dump s | plain upload s (in flight) | first checkpoint s | vs max (<= 1.15) | vs upload | sent MiB | agent CPU-s/GiB (<= 1.0) | workers / cores | work dir MiB (vs 64 MiB + 1%) | second s | second sent (<= 15%) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    const q = ratios(r);
    lines.push(
      `| ${r.mib} MiB ${r.kind} | ${mib(r.imageBytes)} | ${s(r.limits.dumpMs)} | ${s(r.limits.uploadMs)} (${r.limits.uploadInFlight}) | ${s(r.first.totalMs)} | ${x(q.firstVsLimit)} | ${x(q.firstVsUpload)} | ${mib(r.first.storedBytes)} | ${x(q.cpuSecondsPerGiB)} | ${r.first.workers} / ${r.first.cores} | ${mib(r.first.workDirPeakBytes)} (${x(q.workDirVsTarget)}) | ${s(r.second.totalMs)} | ${mib(r.second.storedBytes)} MiB (${(q.secondShare * 100).toFixed(1)}%) |`,
    );
  }
  lines.push(
    '',
    '| task | plain download s (in flight) | plain restore s | spotsnap restore s | vs download + restore (<= 1.3) | agent peak RSS MiB (<= 128) | background freeze s | vs plain dump (<= 1.3) | background total s | background work dir MiB |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const r of results) {
    const q = ratios(r);
    lines.push(
      `| ${r.mib} MiB ${r.kind} | ${s(r.limits.downloadMs)} (${r.limits.downloadInFlight}) | ${s(r.limits.restoreMs)} | ${s(r.restore.totalMs)} | ${x(q.restoreVsLimit)} | ${q.peakRssMiB.toFixed(0)} | ${s(r.background.frozenMs)} | ${x(q.freezeVsDump)} | ${s(r.background.totalMs)} | ${mib(r.background.workDirPeakBytes)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * A case that only checkpoints (host-checkpoint-case.ts), for a task the machine could not hold beside its
 * snapshot: the plain upload of as many bytes and spotsnap's first checkpoint, against a stand-in that checks
 * and drops the packs. No plain dump (its images would not fit beside the task either), restore or second.
 */
export interface CheckpointOnlyResult {
  mib: number;
  kind: MemoryKind;
  /** Bytes the plain upload sent: the task's memory, in whole 8 MiB pieces. */
  plainBytes: number;
  limits: { uploadMs: number; uploadInFlight: number };
  first: Checkpoint & { imageBytes: number; msBeforeDeadline: number };
}

/** The checkpoint-only results as a Markdown table, one row per task. */
export function checkpointOnlyTable(results: CheckpointOnlyResult[]): string {
  const lines = [
    '| task | images MiB | plain upload s (in flight) | first checkpoint s | vs upload | GiB/s | s of the notice left | agent CPU-s/GiB (<= 1.0) | workers / cores | agent peak RSS MiB | work dir MiB |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    const f = r.first;
    lines.push(
      `| ${r.mib} MiB ${r.kind} | ${mib(f.imageBytes)} | ${s(r.limits.uploadMs)} (${r.limits.uploadInFlight}) | ${s(f.totalMs)} | ${x(f.totalMs / r.limits.uploadMs)} | ${x(f.imageBytes / 2 ** 30 / (f.totalMs / 1000))} | ${s(f.msBeforeDeadline)} | ${x(f.cpuSecondsPerGiB)} | ${f.workers} / ${f.cores} | ${mib(f.agentPeakRssBytes)} | ${mib(f.workDirPeakBytes)} |`,
    );
  }
  return lines.join('\n');
}
