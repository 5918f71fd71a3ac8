// Takes one checkpoint: freeze and dump the tree while its images stream to S3 as chunks, add its files, commit.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CriuCli, CriuVersion } from '../criu-bridge/criu-cli.ts';
import type { AttemptRecord } from './attempt-report.ts';
import { autoPacksInFlight, ChunkUploader, type KnownChunks } from './chunk-uploader.ts';
import type { Clock } from './clock.ts';
import type { AgentConfig } from './config.ts';
import { ContentChunker } from './content-chunker.ts';
import { followImages } from './image-follower.ts';
import { chunkRefs, MANIFEST_KIND, MANIFEST_SCHEMA_VERSION, type ChunkedStream, type ImageFile, type Manifest } from './manifest.ts';
import { cpuFigures, memoryFigures } from './resource-figures.ts';
import { treeResidentBytes } from './process-tree.ts';
import { settleAll } from './settle-all.ts';
import { newSnapshotId, SnapshotObject } from './s3-layout.ts';
import type { SnapshotStore } from './snapshot-store.ts';
import type { SpotNotice } from './spot-notice.ts';
import { packDirectories } from './tar-pack.ts';
import type { TaskProcess } from './task-process.ts';
import { TransferProgress } from './transfer-progress.ts';
import { AGENT_VERSION } from './version.ts';

export interface CheckpointContext {
  config: AgentConfig;
  criu: CriuCli;
  criuVersion: CriuVersion;
  store: SnapshotStore;
  task: TaskProcess;
  command: readonly string[];
  /** Chunks of the job's committed snapshots, where they are; a commit adds its own. */
  knownChunks: KnownChunks;
  /** Where the attempt's report collects its checkpoints. */
  record?: AttemptRecord;
  clock: Clock;
  log: Logger;
}

export interface CheckpointResult {
  manifest: Manifest;
}

/** 'final': at a notice, the tree is killed once committed. 'background': the tree runs on as soon as its files are read. */
export type CheckpointKind = 'final' | 'background';

/** SHA-256 of the command line, so that a snapshot only resumes the command it was taken from. */
export function commandDigest(command: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(command)).digest('hex');
}

/**
 * Checkpoints the task. A final checkpoint leaves the tree gone (its state is in S3) and the manifest
 * committed. On any failure no manifest exists and the tree runs on as before.
 */
export async function takeCheckpoint(ctx: CheckpointContext, kind: CheckpointKind, notice: SpotNotice | null): Promise<CheckpointResult> {
  const { config, criu, store, task, log, clock } = ctx;
  const started = clock.now();
  const cpuAtStart = process.cpuUsage();
  const snapshotId = newSnapshotId(config.attempt, new Date(started));
  const imagesDir = path.join(config.workDir, 'images', snapshotId);
  const slog = log.child({ snapshotId, checkpoint: kind });
  await rm(imagesDir, { recursive: true, force: true });
  await mkdir(imagesDir, { recursive: true });

  const packsInFlight = config.packsInFlight === 'auto' ? autoPacksInFlight(treeResidentBytes(task.rootPid)) : config.packsInFlight;
  const uploader = new ChunkUploader(store, ctx.knownChunks, packsInFlight);
  const progress = new TransferProgress({ clock, log: slog, deadline: notice?.deadline, label: 'checkpoint', bytes: () => uploader.sentBytes, terminal: process.stderr });
  let treeStopped = false;
  let committed = false;
  try {
    if (kind === 'final') task.pauseOutput();
    slog.info({ pid: task.rootPid, packsInFlight }, 'freezing and dumping the task with CRIU, streaming its images');
    const dump = criu.dump({
      pid: task.rootPid,
      imagesDir,
      logFile: SnapshotObject.criuLog,
      logLevel: 4,
      tcpMode: config.tcpMode,
      fileLocks: true,
      extraArgs: config.criuExtraArgs,
      // The tree stays frozen until its files are read too; then a final checkpoint keeps it frozen until
      // the commit and kills it, a background one lets it go on at once.
      afterDump: 'stop',
    });
    const following = followImages({ imagesDir, uploader, exclude: new Set([SnapshotObject.criuLog]) }, dump);
    // An upload failure does not stop CRIU half-way (the tree is seized): the dump ends, then both are judged.
    let dumped = started;
    const [, images] = await settleAll<unknown>([
      dump.then(() => {
        treeStopped = true;
        dumped = clock.now();
      }),
      following,
    ]).then((r) => r as [void, ImageFile[]]);
    const imageBytes = images.reduce((s, f) => s + f.bytes, 0);
    slog.info({ dumpMs: dumped - started, imageBytes, sentBytes: uploader.sentBytes }, 'CRIU dump complete; uploading images and files');
    progress.estimate(uploader.transfer.uploadedBytes - uploader.sentBytes);

    const files = await captureFiles(config.paths, uploader, slog);
    // Measured while the tree is still frozen: the work this snapshot holds.
    const usage = task.usage();
    if (kind === 'background') {
      task.continueTree();
      treeStopped = false;
    }
    const transfer = await uploader.drain();
    const criuLog = await store.putObject(snapshotId, 'criuLog', await readFile(path.join(imagesDir, SnapshotObject.criuLog)));
    const uploaded = clock.now();
    const manifest: Manifest = {
      kind: MANIFEST_KIND,
      schemaVersion: MANIFEST_SCHEMA_VERSION,
      jobId: config.jobId,
      attempt: config.attempt,
      snapshotId,
      createdAt: new Date(uploaded).toISOString(),
      agentVersion: AGENT_VERSION,
      criu: { version: ctx.criuVersion.text, versionNumber: ctx.criuVersion.number },
      host: { kernel: os.release(), arch: process.arch },
      task: {
        commandSha256: commandDigest(ctx.command),
        pipes: task.pipeKeys,
        ...usage,
        interruptions: task.history.interruptions + (kind === 'final' ? 1 : 0),
      },
      paths: config.paths,
      checkpointKind: kind,
      notice: notice ? { action: notice.action, time: notice.time } : null,
      images,
      files,
      objects: [criuLog],
      transfer,
      timings: { dumpMs: dumped - started, uploadMs: uploaded - dumped, totalMs: uploaded - started },
    };
    await store.commit(manifest);
    committed = true;
    for (const ref of chunkRefs(manifest)) ctx.knownChunks.set(ref.sha256, ref);
    ctx.record?.checkpoints.push({
      snapshotId,
      kind,
      totalMs: manifest.timings.totalMs,
      uploadedBytes: transfer.uploadedBytes,
      uploadedChunks: transfer.uploadedChunks,
      uploadedPacks: transfer.uploadedPacks,
      totalBytes: transfer.totalBytes,
    });
    if (ctx.record) ctx.record.latest = manifest;
    if (kind === 'final') {
      task.drainOutput();
      task.kill();
    }
    slog.info(
      {
        imageBytes,
        fileBytes: files.bytes,
        uploadedBytes: transfer.uploadedBytes,
        reusedBytes: transfer.totalBytes - transfer.uploadedBytes,
        dumpMs: manifest.timings.dumpMs,
        uploadMs: manifest.timings.uploadMs,
        totalMs: manifest.timings.totalMs,
        msBeforeDeadline: notice ? notice.deadline - clock.now() : undefined,
        agentMemory: memoryFigures(),
        agentCpu: cpuFigures(cpuAtStart),
      },
      'checkpoint committed',
    );
    return { manifest };
  } catch (error) {
    await uploader.cancel(error);
    slog.error({ err: error instanceof Error ? error.message : String(error) }, 'checkpoint failed before its commit; no snapshot was written');
    throw error;
  } finally {
    progress.stop();
    if (!committed) {
      // CRIU thaws the tree itself when the dump fails; after a dump it was left stopped for us.
      if (treeStopped) task.continueTree();
      if (kind === 'final') task.resumeOutput();
    }
    await rm(imagesDir, { recursive: true, force: true });
  }
}

/** Archives the files under `paths` (the tree is frozen) as a tar stream cut into chunks. */
async function captureFiles(paths: readonly string[], uploader: ChunkUploader, log: Logger): Promise<ChunkedStream> {
  const packed = packDirectories(paths.map((p) => ({ dir: p, entryPrefix: p.slice(1) })));
  const chunker = new ContentChunker();
  const files: ChunkedStream = { bytes: 0, chunks: [] };
  try {
    for await (const piece of packed.stream) {
      const data = piece as Buffer;
      files.bytes += data.length;
      await chunker.push(data, uploader.addingTo(files.chunks));
    }
    await chunker.flush(uploader.addingTo(files.chunks));
  } catch (error) {
    packed.stream.destroy();
    await packed.done.catch(() => undefined);
    throw error;
  }
  const report = await packed.done;
  if (report.skipped.length > 0) log.warn({ skipped: report.skipped.slice(0, 20) }, 'left out of the snapshot: not regular files, directories or symlinks');
  return files;
}
