// Restores the job's newest usable committed snapshot: verify every object, put files back, then `criu restore`.
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.ts';
import type { AgentConfig } from '../config/config.ts';
import { chunkedStream, downloadImages, readsInFlight, type ChunkSource } from './chunk-downloader.ts';
import type { Manifest } from '../store/manifest.ts';
import type { SnapshotStore } from '../store/snapshot-store.ts';
import { settleAll } from '../shared/settle-all.ts';
import { extractArchive, undoExtraction, type ExtractResult } from '../archive/tar-extract.ts';
import { RESTORE_CONFIRM_MS, STARTUP_SNAPSHOT_LOOKUP_BUDGET_MS } from '../shared/limits.ts';
import { checkReferencedFiles } from '../task/outside-files.ts';
import { withDeadline } from '../shared/with-deadline.ts';
import type { TaskOutput, TaskProcess } from '../task/task-process.ts';
import { restoreTask, type CriuRestorer } from '../task/task-restore.ts';
import { containerFileMounts } from '../task/mount-info.ts';
import { TransferProgress, type ProgressTerminal } from '../transfer/transfer-progress.ts';
import { chooseSnapshots, incompatibility } from './snapshot-choice.ts';
import { LogEvent } from '../shared/log-events.ts';
import { findExecutable } from '../task/find-executable.ts';
import {
  IMAGE_RELAY_BINARY,
  ImageRelayError,
  ImageStreamServer,
  MAX_SOCKET_PATH,
  STREAM_SOCKET_NAME,
  type ImageFeed,
} from '../../criu-bridge/image-stream-server.ts';
import type { ImageFile } from '../store/manifest.ts';
import { chunkImageFeed, fileImageFeed, SharedReads } from './image-feed.ts';

/** What a restore needs of the job's store (agent/store/snapshot-store.ts): its snapshots, their manifests and chunks. */
export type RestoreStore = Pick<SnapshotStore, 'committedSnapshotIds' | 'lastEndedAttempt' | 'readManifest'> & ChunkSource;

export interface RestoreContext {
  config: AgentConfig;
  criu: CriuRestorer;
  store: RestoreStore;
  command: readonly string[];
  clock: Clock;
  log: Logger;
  /** Where a progress bar may be drawn (default: the agent's stderr). */
  terminal?: ProgressTerminal;
  /** Where the restored task's output goes (default: the agent's stdout and stderr). */
  output?: TaskOutput;
  /** Called before CRIU runs, once the snapshot is verified and its files are back (e.g. to serve its credentials relay). */
  beforeCriu?: (manifest: Manifest) => Promise<void>;
}

export type RestoreOutcome =
  | {
      kind: 'restored';
      task: TaskProcess;
      manifest: Manifest;
      restoreMs: number;
      downloadMs: number;
      criuRestoreMs: number;
      /** When the restored tree ran again (the clock's ms), before the confirmation window that holds its output back. */
      runningAt: number;
    }
  /** Nothing to restore, or nothing that could be: `reasons` says why for each snapshot tried. */
  | { kind: 'none'; reasons: string[]; hadSnapshots: boolean };

export async function restoreNewestSnapshot(ctx: RestoreContext): Promise<RestoreOutcome> {
  // Before the task starts, so bounded: a silent S3 costs the task this much, then it starts from scratch.
  const [all, ended] = await withDeadline(
    Promise.all([ctx.store.committedSnapshotIds(), ctx.store.lastEndedAttempt()]),
    STARTUP_SNAPSHOT_LOOKUP_BUDGET_MS,
    "looking up the job's snapshots",
  );
  const choice = chooseSnapshots(all, ended, ctx.config.jobId);
  if (choice.kind === 'none') return { kind: 'none', reasons: [choice.reason], hadSnapshots: false };
  const reasons: string[] = [];
  // Once the relay failed in this attempt, no restore streams again: the images are downloaded first.
  const relay: RelayState = { failed: false };
  for (const id of choice.snapshotIds) {
    const started = ctx.clock.now();
    try {
      const restored = await restoreSnapshot(ctx, id, relay).catch((error: unknown) => {
        if (!(error instanceof RelayFailedError)) throw error;
        // Not the snapshot's fault: the same snapshot again, its memory images downloaded into the work dir first.
        relay.failed = true;
        ctx.log.warn(
          { event: LogEvent.restoreStreamFellBack, snapshotId: id, err: error.message },
          'the streamed restore failed on the relay: restoring from downloaded images',
        );
        return restoreSnapshot(ctx, id, relay);
      });
      const { task, manifest, downloadMs, criuRestoreMs, runningAt } = restored;
      return { kind: 'restored', task, manifest, restoreMs: runningAt - started, downloadMs, criuRestoreMs, runningAt };
    } catch (error) {
      const reason = `${id}: ${error instanceof Error ? error.message : String(error)}`;
      ctx.log.warn({ event: LogEvent.restoreSnapshotFailed, snapshotId: id, err: reason }, 'snapshot could not be restored; trying the one before');
      reasons.push(reason);
    }
  }
  return { kind: 'none', reasons, hadSnapshots: true };
}

/** Whether the image relay failed earlier in this attempt's restores (then none streams again). */
interface RelayState {
  failed: boolean;
}

/** A streamed restore that failed on the relay's side (ImageRelayError), not the snapshot's: it can be restored from downloaded images. */
class RelayFailedError extends Error {
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.name = 'RelayFailedError';
  }
}

/** Where a restore of `snapshotId` puts CRIU's images (and the socket CRIU streams the rest through). */
export function restoreImagesDir(workDir: string, snapshotId: string): string {
  return path.join(workDir, 'restore', snapshotId, 'images');
}

/** The images that stream from S3 into CRIU's restore rather than land in the work dir first: the memory pages. */
export function isStreamedImage(image: ImageFile): boolean {
  return image.name.startsWith('pages-');
}

/**
 * How this restore reads its memory images: streamed through the bundled relay, or (where the relay is not on
 * the agent's PATH, as when the agent runs outside its bundle, or the work dir's path is too long for a socket)
 * downloaded into the work dir first, as `why` says.
 */
export function streamingRelay(imagesDir: string, searchPath = process.env.PATH): { relay: string } | { why: string } {
  const relay = findExecutable(IMAGE_RELAY_BINARY, searchPath);
  if (!relay) return { why: `no ${IMAGE_RELAY_BINARY} on the agent's PATH (it ships in the bundle's bin/)` };
  const socket = path.join(imagesDir, STREAM_SOCKET_NAME);
  if (socket.length > MAX_SOCKET_PATH) return { why: `${socket} is longer than a UNIX socket path may be (${MAX_SOCKET_PATH} bytes)` };
  return { relay };
}

async function restoreSnapshot(
  ctx: RestoreContext,
  snapshotId: string,
  relay: RelayState,
): Promise<{ task: TaskProcess; manifest: Manifest; downloadMs: number; criuRestoreMs: number; runningAt: number }> {
  const { config, store, log } = ctx;
  const manifest = await store.readManifest(snapshotId);
  const why = incompatibility(manifest, config, ctx.command);
  if (why) throw new Error(`not restorable: ${why}`);
  const slog = log.child({ snapshotId });
  const imagesDir = restoreImagesDir(config.workDir, snapshotId);
  const stagingDir = path.dirname(imagesDir);
  await rm(stagingDir, { recursive: true, force: true });
  await mkdir(imagesDir, { recursive: true });
  const extracted: ExtractResult = { entries: 0, created: [] };
  const extractedOutside: ExtractResult = { entries: 0, created: [] };
  let task: TaskProcess | undefined;
  let server: ImageStreamServer | undefined;
  try {
    // Files the task had open that came with the image must be here as they were, before anything is written.
    await checkReferencedFiles(manifest.outside.referenced);
    const imageBytes = manifest.images.reduce((s, f) => s + f.bytes, 0);
    const reads = readsInFlight(config.packsInFlight, imageBytes);
    const streaming = relay.failed ? { why: 'the image relay failed earlier in this restore' } : streamingRelay(imagesDir);
    const streamed = 'relay' in streaming ? manifest.images.filter(isStreamedImage) : [];
    const local = manifest.images.filter((image) => !streamed.includes(image));
    const streamedBytes = streamed.reduce((sum, image) => sum + image.bytes, 0);
    slog.info(
      {
        event: LogEvent.restoreStarted,
        imageBytes,
        fileBytes: manifest.files.bytes,
        outsideBytes: manifest.outside.files.bytes,
        readsInFlight: reads,
        streamedBytes,
        streamed: 'why' in streaming ? streaming.why : true,
      },
      'downloading and verifying the snapshot',
    );
    const downloadStarted = ctx.clock.now();
    let downloaded = 0;
    const progress = new TransferProgress({
      clock: ctx.clock,
      log: slog,
      label: 'restore download',
      bytes: () => downloaded,
      total: () => imageBytes,
      terminal: ctx.terminal ?? process.stderr,
    });
    // Every chunk is checked against its digest before a byte of it is used. Images go into a private
    // staging directory; the files archives are extracted under SPOTSNAP_PATHS and the recorded outside roots
    // only, entry by entry.
    await settleAll<unknown>([
      downloadImages(store, local, imagesDir, reads, (n) => (downloaded += n)),
      extractArchive(chunkedStream(store, manifest.files.chunks), { root: '/', allowedRoots: config.paths }, extracted),
      extractArchive(chunkedStream(store, manifest.outside.files.chunks), { root: '/', allowedRoots: manifest.outside.roots }, extractedOutside),
    ]).finally(() => progress.stop());
    const downloadMs = ctx.clock.now() - downloadStarted;
    slog.info(
      { event: LogEvent.restoreDownloaded, files: extracted.entries, outsideFiles: extractedOutside.entries, downloadMs },
      'snapshot verified and files restored; restoring the process tree',
    );
    await ctx.beforeCriu?.(manifest);
    const criuStarted = ctx.clock.now();
    if ('relay' in streaming) {
      // CRIU asks for every image through the relay: the memory images stream from S3, each chunk checked before
      // a byte of it is written to CRIU's pipe; the others come from the files downloaded and checked above.
      // Images CRIU reads side by side (a process each) share the restore's reads ahead.
      const shared = new SharedReads(reads - 1);
      const feeds = new Map<string, ImageFeed>([
        ...local.map((image): [string, ImageFeed] => [image.name, fileImageFeed(path.join(imagesDir, image.name))]),
        ...streamed.map((image): [string, ImageFeed] => [
          image.name,
          chunkImageFeed(store, image, { readsAhead: reads, shared, onBytes: (n) => (downloaded += n) }),
        ]),
      ]);
      server = await ImageStreamServer.start(streaming.relay, imagesDir, (name) => feeds.get(name)).catch(async (error: unknown) => {
        // No stream then (nothing was read through it yet): the memory images are downloaded and checked first.
        relay.failed = true;
        slog.warn(
          { event: LogEvent.restoreStreamFellBack, err: error instanceof Error ? error.message : String(error) },
          'the image relay did not start: downloading the memory images first',
        );
        await downloadImages(store, streamed, imagesDir, reads, (n) => (downloaded += n));
        return undefined;
      });
    }
    task = await restoreTask(
      ctx.criu,
      {
        imagesDir,
        logFile: 'criu-restore.log',
        logLevel: 4,
        tcpMode: config.tcpMode,
        fileLocks: true,
        externalFileMounts: containerFileMounts(),
        extraArgs: config.criuExtraArgs,
        pidFile: path.join(stagingDir, 'restored.pid'),
        // The images were downloaded for this restore alone (a retry downloads again).
        consumeImages: true,
        stream: server !== undefined,
      },
      manifest.task.pipes,
      { clock: ctx.clock, output: ctx.output },
    ).catch((error: unknown) => {
      // A stream that failed (a chunk that did not pass its check, or the relay) is why CRIU could not restore:
      // said first, with what CRIU said after it.
      const streamFailure = server?.failure();
      if (!streamFailure) throw error;
      const message = `${streamFailure.message}; so ${error instanceof Error ? error.message : String(error)}`;
      throw streamFailure instanceof ImageRelayError ? new RelayFailedError(message, error) : new Error(message, { cause: error });
    });
    // The tree runs from here (its output held back while it proves it does): what a restore's time counts up to.
    const runningAt = ctx.clock.now();
    const criuRestoreMs = runningAt - criuStarted;
    if (server) await endStream(server, slog);
    await confirmRunning(task, ctx.clock, slog);
    // The restored tree carries on the task's history: its run and CPU time, and interruptions so far.
    task.history = { runMs: manifest.task.runMs, cpuMs: manifest.task.cpuMs, interruptions: manifest.task.interruptions };
    await rm(stagingDir, { recursive: true, force: true }).catch((error: unknown) =>
      slog.warn({ event: LogEvent.restoreCleanupFailed, err: String(error) }, 'could not remove the restore staging directory'),
    );
    return { task, manifest, downloadMs, criuRestoreMs, runningAt };
  } catch (error) {
    // Never two copies of the task: a tree that was restored and then given up is gone before anything else runs.
    if (task) await task.killAndWait();
    await server?.stop();
    // A fresh start (or the next snapshot) begins from what a fresh start would have found.
    await undoExtraction(extractedOutside).catch(() => undefined);
    await undoExtraction(extracted).catch(() => undefined);
    await rm(stagingDir, { recursive: true, force: true }).catch(() => undefined);
    throw error;
  }
}

/**
 * Ends a streamed restore's image server once CRIU restored the tree (it asks for nothing more; in the
 * foreground it keeps its end of the socket until the tree ends). Every byte it read passed its checks before it
 * was written; an image it did not read to the end (it reads what it needs) is logged, not held against the
 * restore, and its feed ends on its own once its pipe is closed.
 */
async function endStream(server: ImageStreamServer, log: Logger): Promise<void> {
  await server.stop();
  const served = server.requests.filter((r) => r.served);
  const unfinished = served.filter((r) => r.ended !== true).map((r) => `${r.name}: ${r.ended ?? 'still being written'} after ${r.bytes} bytes`);
  // When CRIU first asked for memory pages and when the last of them was in its pipe (ms after the server started).
  const pages = served.filter((r) => r.name.startsWith('pages-'));
  const pagesAskedMs = pages.length > 0 ? Math.min(...pages.map((r) => r.askedMs)) : undefined;
  const pagesEndedMs = pages.length > 0 ? Math.max(...pages.map((r) => r.endedMs ?? 0)) : undefined;
  log.info(
    {
      event: LogEvent.restoreStreamed,
      images: served.length,
      bytes: served.reduce((sum, r) => sum + r.bytes, 0),
      pagesAskedMs,
      pagesEndedMs,
      unfinished,
    },
    "criu read the snapshot's images through the stream",
  );
}

/**
 * Holds the restored tree's output back until it has run for RESTORE_CONFIRM_MS; throws when it died at once by a
 * signal, or without reporting a status, which means the restore did not work (its exit is not the task's own).
 */
async function confirmRunning(task: TaskProcess, clock: Clock, log: Logger): Promise<void> {
  task.holdOutput();
  const settled = new AbortController();
  const confirmed = clock.sleep(RESTORE_CONFIRM_MS, settled.signal).then(
    () => 'running' as const,
    () => 'running' as const,
  );
  const outcome = await Promise.race([confirmed, task.exited]);
  settled.abort();
  if (outcome !== 'running' && (!outcome.commandEnded || outcome.code >= 128)) {
    task.discardOutput();
    throw new Error(`the restored task ended at once (${outcome.reason}): the snapshot does not run in this container`);
  }
  if (outcome !== 'running') log.info({ event: LogEvent.restoreTaskEnded, exitCode: outcome.code }, 'the restored task finished right after its restore');
  task.releaseOutput();
}
