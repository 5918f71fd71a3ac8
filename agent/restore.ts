// Restores the job's newest usable committed snapshot: verify every object, put files back, then `criu restore`.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CriuCli } from '../criu-bridge/criu-cli.ts';
import { commandDigest } from './checkpoint.ts';
import type { Clock } from './clock.ts';
import type { AgentConfig } from './config.ts';
import { chunkedStream, downloadImages } from './chunk-downloader.ts';
import type { Manifest } from './manifest.ts';
import type { SnapshotStore } from './snapshot-store.ts';
import { settleAll } from './settle-all.ts';
import { extractArchive, undoExtraction, type ExtractResult } from './tar-extract.ts';
import { TaskProcess } from './task-process.ts';
import { TransferProgress } from './transfer-progress.ts';

export interface RestoreContext {
  config: AgentConfig;
  criu: CriuCli;
  store: SnapshotStore;
  command: readonly string[];
  clock: Clock;
  log: Logger;
}

export type RestoreOutcome =
  | { kind: 'restored'; task: TaskProcess; manifest: Manifest; restoreMs: number; downloadMs: number; criuRestoreMs: number }
  /** Nothing to restore, or nothing that could be: `reasons` says why for each snapshot tried. */
  | { kind: 'none'; reasons: string[]; hadSnapshots: boolean };

/** How many committed snapshots are tried, newest first, before giving up. */
const MAX_SNAPSHOTS_TRIED = 3;

export async function restoreNewestSnapshot(ctx: RestoreContext): Promise<RestoreOutcome> {
  const ids = await ctx.store.committedSnapshotIds();
  if (ids.length === 0) return { kind: 'none', reasons: [`no committed snapshot for job ${ctx.config.jobId}`], hadSnapshots: false };
  const reasons: string[] = [];
  for (const id of ids.slice(0, MAX_SNAPSHOTS_TRIED)) {
    const started = ctx.clock.now();
    try {
      const { task, manifest, downloadMs, criuRestoreMs } = await restoreSnapshot(ctx, id);
      return { kind: 'restored', task, manifest, restoreMs: ctx.clock.now() - started, downloadMs, criuRestoreMs };
    } catch (error) {
      const reason = `${id}: ${error instanceof Error ? error.message : String(error)}`;
      ctx.log.warn({ snapshotId: id, err: reason }, 'snapshot could not be restored; trying the one before');
      reasons.push(reason);
    }
  }
  return { kind: 'none', reasons, hadSnapshots: true };
}

/** Why a manifest cannot resume this task here, or undefined when it can. */
export function incompatibility(manifest: Manifest, config: AgentConfig, command: readonly string[]): string | undefined {
  if (manifest.task.commandSha256 !== commandDigest(command)) return 'it was taken from a different command line';
  if (manifest.host.arch !== process.arch) return `it was taken on ${manifest.host.arch}, this is ${process.arch}`;
  const same = manifest.paths.length === config.paths.length && manifest.paths.every((p, i) => p === config.paths[i]);
  if (!same) return `it holds paths ${manifest.paths.join(':')} but SPOTSNAP_PATHS is ${config.paths.join(':')}`;
  return undefined;
}

async function restoreSnapshot(
  ctx: RestoreContext,
  snapshotId: string,
): Promise<{ task: TaskProcess; manifest: Manifest; downloadMs: number; criuRestoreMs: number }> {
  const { config, store, log } = ctx;
  const manifest = await store.readManifest(snapshotId);
  const why = incompatibility(manifest, config, ctx.command);
  if (why) throw new Error(`not restorable: ${why}`);
  const slog = log.child({ snapshotId });
  const stagingDir = path.join(config.workDir, 'restore', snapshotId);
  const imagesDir = path.join(stagingDir, 'images');
  await rm(stagingDir, { recursive: true, force: true });
  await mkdir(imagesDir, { recursive: true });
  const extracted: ExtractResult = { entries: 0, created: [] };
  try {
    const imageBytes = manifest.images.reduce((s, f) => s + f.bytes, 0);
    slog.info({ imageBytes, fileBytes: manifest.files.bytes }, 'downloading and verifying the snapshot');
    const downloadStarted = ctx.clock.now();
    let downloaded = 0;
    const progress = new TransferProgress({
      clock: ctx.clock,
      log: slog,
      label: 'restore download',
      bytes: () => downloaded,
      total: () => imageBytes,
      terminal: process.stderr,
    });
    // Every chunk is checked against its SHA-256 before a byte of it is used. Images go into a private
    // staging directory; the files archive is extracted under SPOTSNAP_PATHS only, entry by entry.
    await settleAll<unknown>([
      downloadImages(store, manifest.images, imagesDir, undefined, (n) => (downloaded += n)),
      extractArchive(chunkedStream(store, manifest.files.chunks), { root: '/', allowedRoots: config.paths }, extracted),
    ]).finally(() => progress.stop());
    const downloadMs = ctx.clock.now() - downloadStarted;
    slog.info({ files: extracted.entries, downloadMs }, 'snapshot verified and files restored; restoring the process tree');
    const criuStarted = ctx.clock.now();
    const task = await TaskProcess.restore(
      ctx.criu,
      {
        imagesDir,
        logFile: 'criu-restore.log',
        logLevel: 4,
        tcpMode: config.tcpMode,
        fileLocks: true,
        extraArgs: config.criuExtraArgs,
        pidFile: path.join(stagingDir, 'restored.pid'),
        // The images were downloaded for this restore alone (a retry downloads again).
        consumeImages: true,
      },
      manifest.task.pipes,
    );
    // The restored tree carries on the task's history: its run and CPU time, and interruptions so far.
    task.history = { runMs: manifest.task.runMs, cpuMs: manifest.task.cpuMs, interruptions: manifest.task.interruptions };
    const criuRestoreMs = ctx.clock.now() - criuStarted;
    await rm(stagingDir, { recursive: true, force: true });
    return { task, manifest, downloadMs, criuRestoreMs };
  } catch (error) {
    await undoExtraction(extracted).catch(() => undefined);
    await rm(stagingDir, { recursive: true, force: true });
    throw error;
  }
}
