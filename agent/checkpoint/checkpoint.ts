// Takes one checkpoint: freeze and dump the tree while its images stream to S3 as chunks, add its files, commit.
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CriuCli, CriuVersion } from '../../criu-bridge/criu-cli.ts';
import { DirectPageReceiver } from './page-receiver.ts';
import { PageChunkSink } from './page-chunks.ts';
import { sharedChunkWorkers } from '../transfer/chunk-workers.ts';
import { usableCores, workerCount } from '../transfer/worker-count.ts';
import { PackSpill } from '../transfer/pack-spill.ts';
import { spillRoomFor } from './spill-headroom.ts';
import { WindowSpill } from './window-spill.ts';
import type { CompressionPace } from '../transfer/compression-pace.ts';
import type { AttemptRecord } from '../run/attempt-report.ts';
import { autoPacksInFlight, ChunkUploader, type KnownChunks } from '../transfer/chunk-uploader.ts';
import type { Clock } from '../shared/clock.ts';
import type { AgentConfig } from '../config/config.ts';
import { followImages } from './image-follower.ts';
import { chunkRefs, commandDigest, MANIFEST_KIND, MANIFEST_SCHEMA_VERSION, type Manifest } from '../store/manifest.ts';
import { cpuFigures, memoryFigures } from '../shared/resource-figures.ts';
import { newSnapshotId, SnapshotObject } from '../store/s3-layout.ts';
import type { SnapshotStore } from '../store/snapshot-store.ts';
import type { SpotNotice } from '../notice/spot-notice.ts';
import { planOutsideFiles, scratchDirsFor } from '../task/outside-files.ts';
import { packDirectories, packPaths } from '../archive/tar-pack.ts';
import type { CheckpointedTask } from '../task/task-tree.ts';
import { containerFileMounts } from '../task/mount-info.ts';
import { TransferProgress, type ProgressTerminal } from '../transfer/transfer-progress.ts';
import { AGENT_VERSION } from '../shared/version.ts';
import { bundleRoot, chunkArchive, dirSources, outsideRoots, spool, type Archive } from './checkpoint-archives.ts';
import { parseManifest } from '../store/manifest-parser.ts';
import { LogEvent } from '../shared/log-events.ts';

/** What a checkpoint needs of CRIU (criu-bridge/criu-cli.ts's CriuCli): a dump whose pages go to the agent's page server. */
export type CriuDumper = Pick<CriuCli, 'dumpToPageServer'>;

/** What a checkpoint needs of the job's store (agent/store/snapshot-store.ts): packs, the CRIU log, the commit. */
export type CheckpointStore = Pick<SnapshotStore, 'putPack' | 'putObject' | 'commit'>;

export interface CheckpointContext {
  config: AgentConfig;
  criu: CriuDumper;
  criuVersion: CriuVersion;
  store: CheckpointStore;
  task: CheckpointedTask;
  command: readonly string[];
  /** Chunks of the job's committed snapshots, where they are; a commit adds its own. */
  knownChunks: KnownChunks;
  /** Where the attempt's report collects its checkpoints. */
  record?: AttemptRecord;
  /** The attempt's measured zstd and PUT rates, carried from one checkpoint to the next (compression-pace.ts). */
  compressionPace?: CompressionPace;
  clock: Clock;
  log: Logger;
  /** The agent's environment, for the task's scratch directories (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Where a progress bar may be drawn (default: the agent's stderr). */
  terminal?: ProgressTerminal;
}

export interface CheckpointResult {
  manifest: Manifest;
}

/** 'final': at a notice, the tree stays frozen once committed. 'background': the tree runs on as soon as its files are copied aside. */
export type CheckpointKind = 'final' | 'background';

/** How far before the agent started a file's change may lie and still count as the task's own (clock granularity). */
const CHANGED_SINCE_SLACK_MS = 1000;
/** CRIU's default ghost-file limit is 1 MiB; an unlinked scratch file of any size travels in the images like memory. */
const GHOST_LIMIT_BYTES = 1024 ** 4;
/**
 * Says at once, before anything is dumped, when a final checkpoint is unlikely to finish before the notice's
 * deadline at the rate the job's last checkpoint was measured at. It goes on all the same (unchanged memory is
 * not sent again, and the instance may stay longer): a checkpoint that does not finish commits nothing, so no
 * manifest ever names data that is not in S3.
 */
function warnIfLate(ctx: CheckpointContext, notice: SpotNotice | null, log: Logger): void {
  const last = ctx.record?.latest;
  if (!notice || !last || last.timings.totalMs <= 0) return;
  const bytesPerMs = last.transfer.totalBytes / last.timings.totalMs;
  const expectedMs = Math.round(ctx.task.residentBytes() / bytesPerMs);
  const leftMs = notice.deadline - ctx.clock.now();
  if (expectedMs > leftMs) {
    log.warn(
      { event: LogEvent.transferLate, expectedMs, msBeforeDeadline: leftMs, mibPerSecond: Number(((bytesPerMs * 1000) / 1048576).toFixed(1)) },
      'this checkpoint may not finish before the deadline at the rate the last one took; it commits only if every byte arrives',
    );
  }
}

/** The bytes of the regular files under `dir` (0 if it is gone). */
async function directoryBytes(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  const sizes = await Promise.all(
    entries
      .filter((e) => e.isFile())
      .map((e) =>
        stat(path.join(e.parentPath, e.name)).then(
          (st) => st.size,
          () => 0,
        ),
      ),
  );
  return sizes.reduce((sum, n) => sum + n, 0);
}

/**
 * Checkpoints the task. A final checkpoint leaves the tree frozen, its output copied out and the manifest
 * committed: the caller kills it, or lets it run on if the instance stays. A background checkpoint lets the tree
 * run on as soon as CRIU is done and its files are copied aside. On any failure no manifest exists and the tree
 * runs on as before.
 */
export async function takeCheckpoint(ctx: CheckpointContext, kind: CheckpointKind, notice: SpotNotice | null): Promise<CheckpointResult> {
  const { config, criu, store, task, log, clock } = ctx;
  const scratchDirs = scratchDirsFor(ctx.env ?? process.env);
  const started = clock.now();
  const cpuAtStart = process.cpuUsage();
  const snapshotId = newSnapshotId(config.attempt, new Date(started));
  const imagesDir = path.join(config.workDir, 'images', snapshotId);
  const spoolDir = path.join(config.workDir, 'spool', snapshotId);
  const slog = log.child({ snapshotId, checkpoint: kind });
  await rm(imagesDir, { recursive: true, force: true });
  await mkdir(imagesDir, { recursive: true });

  const packsInFlight = config.packsInFlight === 'auto' ? autoPacksInFlight(task.residentBytes()) : config.packsInFlight;
  const cores = usableCores();
  const workers = sharedChunkWorkers(workerCount(config.workers, cores));
  const uploader = new ChunkUploader(store, ctx.knownChunks, packsInFlight, { workers, pace: ctx.compressionPace });
  // A background checkpoint's packs may wait on disk while its task is frozen, so that the freeze lasts about
  // as long as CRIU's dump, not as long as the upload. A final one's task stays frozen anyway: nothing spills.
  // Its page windows go raw to the work dir first (window-spill.ts), under the same limit.
  // On a tmpfs work dir, at most half of what the container's memory leaves (spill-headroom.ts).
  let windowSpill: WindowSpill | undefined;
  const spillRoom = kind === 'background' && config.spillLimitBytes > 0 ? await spillRoomFor(config.workDir, config.spillLimitBytes) : undefined;
  const spillLimit = spillRoom?.limitBytes ?? 0;
  const spill = spillLimit > 0 ? new PackSpill(path.join(spoolDir, 'packs'), spillLimit, () => windowSpill?.heldBytes ?? 0) : undefined;
  uploader.spillTo(spill);
  const pageChunks = new PageChunkSink(uploader);
  if (spill) {
    windowSpill = new WindowSpill(pageChunks, {
      // Beside the spool directory, not in it: that directory's size is counted on its own below.
      file: `${spoolDir}.windows`,
      limitBytes: spillLimit,
      uploadBytesPerMs: () => {
        const perPut = uploader.pace.putBytesPerMs();
        return perPut === undefined ? undefined : perPut * packsInFlight;
      },
      othersHeldBytes: () => spill.held,
    });
  }
  const progress = new TransferProgress({
    clock,
    log: slog,
    deadline: notice?.deadline,
    label: 'checkpoint',
    bytes: () => uploader.sentBytes,
    terminal: ctx.terminal ?? process.stderr,
  });
  let treeStopped = false;
  let committed = false;
  try {
    if (kind === 'final') task.pauseOutput();
    warnIfLate(ctx, notice, slog);
    if (windowSpill && spillRoom?.inMemory) {
      // On tmpfs the windows' pages are allocated now, while the task runs, rather than during its freeze.
      const reserveStarted = clock.now();
      const reservedBytes = await windowSpill.reserve(task.anonymousBytes());
      slog.info(
        { event: LogEvent.checkpointSpillReserved, reservedBytes, ms: clock.now() - reserveStarted, refused: windowSpill.reserveRefused },
        'work dir memory written ahead for the page windows, before the freeze',
      );
    }
    // The freeze starts with the dump: what came before it (the reservation) kept the task running.
    const freezeStarted = clock.now();
    slog.info(
      { event: LogEvent.checkpointStarted, pid: task.rootPid, packsInFlight, workers: workers.size, cores },
      'freezing and dumping the task with CRIU, streaming its pages and images',
    );
    const dump = criu.dumpToPageServer(
      {
        pid: task.rootPid,
        imagesDir,
        logFile: SnapshotObject.criuLog,
        logLevel: 4,
        tcpMode: config.tcpMode,
        fileLocks: true,
        ghostLimitBytes: GHOST_LIMIT_BYTES,
        externalFileMounts: containerFileMounts(),
        // Where CRIU looks for a file watched with inotify or fanotify that it cannot reopen by its handle
        // (overlayfs, the usual container root, cannot): the task's own directories.
        irmapScanPaths: [...config.paths, ...scratchDirs],
        extraArgs: config.criuExtraArgs,
        // The tree stays frozen until its files are read too; then a final checkpoint keeps it frozen for the
        // caller, a background one lets it go on at once.
        afterDump: 'stop',
      },
      new DirectPageReceiver(windowSpill ?? pageChunks),
    );
    const following = followImages({ imagesDir, uploader, exclude: new Set([SnapshotObject.criuLog]), clock }, dump);
    // Judged below; an upload failure does not stop CRIU half-way (the tree is seized): the dump ends first.
    following.catch(() => undefined);
    const dumpOutcome = await dump.then(
      (received) => ({ received }),
      (error: unknown) => ({ error: error ?? new Error('criu dump failed') }),
    );
    if ('error' in dumpOutcome) {
      await following.catch(() => undefined);
      throw dumpOutcome.error;
    }
    treeStopped = true;
    const dumped = clock.now();
    // CRIU's images other than pages, all written now: the most of them the work dir holds.
    let workDirPeakBytes = await directoryBytes(imagesDir);
    slog.info(
      { event: LogEvent.checkpointDumped, dumpMs: dumped - freezeStarted, sentBytes: uploader.sentBytes },
      'CRIU dump complete; uploading images and files',
    );

    // The tree is frozen: its files now are the ones its memory expects.
    const outsidePlan = await planOutsideFiles({
      pids: task.pids(),
      paths: config.paths,
      scratchDirs,
      changedSinceMs: Math.floor(performance.timeOrigin) - CHANGED_SINCE_SLACK_MS,
      exclude: [config.workDir, bundleRoot()],
    });
    const usage = task.usage();
    const archive = { files: () => packDirectories(dirSources(config.paths)), outside: () => packPaths(outsidePlan.captured) };
    let spooled: { files: Archive; outside: Archive } | undefined;
    let frozenMs = 0;
    if (kind === 'background') {
      // Copied aside, so that the task runs on while they and the rest of its images travel.
      spooled = { files: await spool(archive.files(), spoolDir, 'files.tar'), outside: await spool(archive.outside(), spoolDir, 'outside.tar') };
      workDirPeakBytes += await directoryBytes(spoolDir);
      uploader.spillTo(undefined);
      task.continueTree();
      treeStopped = false;
      frozenMs = clock.now() - freezeStarted;
      slog.info({ event: LogEvent.checkpointThawed, frozenMs }, 'the task runs on; its checkpoint goes on uploading');
      // The windows that waited in the work dir go through the chunks now, before the images are listed.
      await windowSpill?.drain();
    }
    const images = [...(await following), ...(await pageChunks.imageFiles(dumpOutcome.received, uploader))].sort((a, b) => a.name.localeCompare(b.name));
    const imageBytes = images.reduce((s, f) => s + f.bytes, 0);
    progress.estimate(uploader.transfer.uploadedBytes - uploader.sentBytes);
    const files = await chunkArchive(spooled?.files ?? archive.files(), uploader, slog);
    const outsideFiles = await chunkArchive(spooled?.outside ?? archive.outside(), uploader, slog);
    const transfer = await uploader.drain();
    const criuLog = await store.putObject(snapshotId, 'criuLog', await readFile(path.join(imagesDir, SnapshotObject.criuLog)));
    const uploaded = clock.now();
    if (kind === 'final') frozenMs = uploaded - freezeStarted;
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
      outside: { roots: outsideRoots(outsidePlan.captured, scratchDirs), files: outsideFiles, referenced: outsidePlan.referenced },
      batch: { jobId: config.batch.jobId ?? null, arrayIndex: config.batch.arrayIndex ?? null },
      credentialsRelay: task.credentialsRelay ?? null,
      objects: [criuLog],
      transfer,
      timings: { dumpMs: dumped - freezeStarted, uploadMs: uploaded - dumped, totalMs: uploaded - started, frozenMs },
    };
    // Read back as a restore will read it: a manifest no restore could use is never committed.
    parseManifest(JSON.stringify(manifest));
    await store.commit(manifest);
    committed = true;
    for (const ref of chunkRefs(manifest)) ctx.knownChunks.set(ref.digest, ref);
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
    const cpu = cpuFigures(cpuAtStart);
    // What the frozen task left in its pipes is printed now: the snapshot does not hold it.
    if (kind === 'final') task.drainOutput();
    slog.info(
      {
        event: LogEvent.checkpointCommitted,
        imageBytes,
        fileBytes: files.bytes,
        // Names stay out of the log; how much came from where does not.
        outside: { roots: manifest.outside.roots, captured: outsidePlan.captured.length, bytes: outsideFiles.bytes, referenced: outsidePlan.referenced.length },
        uploadedBytes: transfer.uploadedBytes,
        reusedBytes: transfer.totalBytes - transfer.uploadedBytes,
        dumpMs: manifest.timings.dumpMs,
        uploadMs: manifest.timings.uploadMs,
        totalMs: manifest.timings.totalMs,
        frozenMs,
        msBeforeDeadline: notice ? notice.deadline - clock.now() : undefined,
        storedBytes: transfer.storedBytes,
        agentMemory: memoryFigures(),
        agentCpu: cpu,
        // CPU of the agent (every thread) per GiB of the task's images and files: what the checkpoint costs the instance.
        cpuSecondsPerGiB: Number(((cpu.userMs + cpu.systemMs) / 1000 / Math.max(transfer.totalBytes / 1024 ** 3, 1 / 1024)).toFixed(2)),
        workers: workers.size,
        cores,
        // Chunks offered to zstd, those kept raw because the cores, not the uploads, were the limit, and the
        // measured rates that judged it (compression-pace.ts).
        compression: { ...uploader.compressionChoices, ...uploader.pace.figures() },
        spill: spill
          ? {
              packs: spill.spilledPacks,
              mostBytes: spill.mostBytes,
              windows: windowSpill?.spilledWindows,
              windowBytes: windowSpill?.mostBytes,
              windowsRefused: windowSpill?.writeError,
            }
          : undefined,
        // What the checkpoint wrote to SPOTSNAP_WORK_DIR at most: CRIU's small images, a background one's spooled
        // archives and spilled packs. Pages never land there.
        workDirPeakBytes: workDirPeakBytes + (spill?.mostBytes ?? 0) + (windowSpill?.mostBytes ?? 0),
      },
      'checkpoint committed',
    );
    return { manifest };
  } catch (error) {
    await uploader.cancel(error);
    slog.error(
      { event: LogEvent.checkpointAborted, err: error instanceof Error ? error.message : String(error) },
      'checkpoint failed before its commit; no snapshot was written',
    );
    throw error;
  } finally {
    progress.stop();
    if (!committed) {
      // CRIU thaws the tree itself when the dump fails; after a dump it was left stopped for us.
      if (treeStopped) task.continueTree();
      if (kind === 'final') task.resumeOutput();
    }
    await windowSpill?.discard();
    await rm(imagesDir, { recursive: true, force: true });
    await rm(spoolDir, { recursive: true, force: true });
  }
}
