// Takes one checkpoint: freeze and dump the tree, stream images and files to S3, commit the manifest last.
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { CriuCli, CriuVersion } from '../criu-bridge/criu-cli.ts';
import type { Clock } from './clock.ts';
import type { AgentConfig } from './config.ts';
import { MANIFEST_KIND, MANIFEST_SCHEMA_VERSION, type Manifest, type ManifestObject } from './manifest.ts';
import { newSnapshotId, SnapshotObject } from './s3-layout.ts';
import type { SnapshotStore } from './snapshot-store.ts';
import type { SpotNotice } from './spot-notice.ts';
import { settleAll } from './settle-all.ts';
import { packDirectories, type PackReport } from './tar-pack.ts';
import type { TaskProcess } from './task-process.ts';
import { AGENT_VERSION } from './version.ts';
import { createReadStream } from 'node:fs';
import { TransferProgress } from './transfer-progress.ts';

export interface CheckpointContext {
  config: AgentConfig;
  criu: CriuCli;
  criuVersion: CriuVersion;
  store: SnapshotStore;
  task: TaskProcess;
  command: readonly string[];
  clock: Clock;
  log: Logger;
}

export interface CheckpointResult {
  manifest: Manifest;
  uploadedBytes: number;
}

/** SHA-256 of the command line, so that a snapshot only resumes the command it was taken from. */
export function commandDigest(command: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(command)).digest('hex');
}

/**
 * Checkpoints the task. On success the tree is gone (its state is in S3) and the manifest is committed.
 * On failure no manifest exists, the partial objects are removed, and the tree runs on as before.
 */
export async function takeCheckpoint(ctx: CheckpointContext, notice: SpotNotice | null): Promise<CheckpointResult> {
  const { config, criu, store, task, log, clock } = ctx;
  const started = clock.now();
  const snapshotId = newSnapshotId(config.attempt, new Date(started));
  const imagesDir = path.join(config.workDir, 'images', snapshotId);
  const slog = log.child({ snapshotId });
  await rm(imagesDir, { recursive: true, force: true });
  await mkdir(imagesDir, { recursive: true });

  task.pauseOutput();
  slog.info({ pid: task.rootPid, imagesDir }, 'freezing and dumping the task with CRIU');
  try {
    await criu.dump({
      pid: task.rootPid,
      imagesDir,
      logFile: SnapshotObject.criuLog,
      logLevel: 4,
      tcpMode: config.tcpMode,
      fileLocks: true,
      extraArgs: config.criuExtraArgs,
      // The tree stays frozen until its files and images are safe in S3, then is killed; on failure it runs on.
      afterDump: 'stop',
    });
  } catch (error) {
    task.resumeOutput();
    await rm(imagesDir, { recursive: true, force: true });
    throw error;
  }
  const dumped = clock.now();
  slog.info({ dumpMs: dumped - started }, 'CRIU dump complete; uploading images and files');

  const progress = new TransferProgress({ clock, log: slog, deadline: notice?.deadline, label: 'checkpoint upload' });
  try {
    const images = packDirectories([{ dir: imagesDir, entryPrefix: '' }]);
    const files = packDirectories(config.paths.map((p) => ({ dir: p, entryPrefix: p.slice(1) })));
    const [imagesObject, filesObject, , filesReport] = await settleAll<unknown>(
      [
        store.upload(snapshotId, 'images', images.stream, progress.counter('images')),
        store.upload(snapshotId, 'files', files.stream, progress.counter('files')),
        images.done,
        files.done,
      ],
      () => {
        images.stream.destroy();
        files.stream.destroy();
      },
    );
    const skipped = (filesReport as PackReport).skipped;
    if (skipped.length > 0) slog.warn({ skipped: skipped.slice(0, 20) }, 'left out of the snapshot: not regular files, directories or symlinks');
    const objects = [imagesObject as ManifestObject, filesObject as ManifestObject];
    objects.push(await store.upload(snapshotId, 'criuLog', createReadStream(path.join(imagesDir, SnapshotObject.criuLog))));
    progress.stop();
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
      task: { commandSha256: commandDigest(ctx.command), pipes: task.pipeKeys },
      paths: config.paths,
      notice: notice ? { action: notice.action, time: notice.time } : null,
      objects,
      timings: { dumpMs: dumped - started, uploadMs: uploaded - dumped, totalMs: uploaded - started },
    };
    await store.commit(manifest);
    task.drainOutput();
    task.kill();
    const uploadedBytes = objects.reduce((sum, o) => sum + o.bytes, 0);
    slog.info(
      {
        bytes: uploadedBytes,
        dumpMs: manifest.timings.dumpMs,
        uploadMs: manifest.timings.uploadMs,
        totalMs: manifest.timings.totalMs,
        msBeforeDeadline: notice ? notice.deadline - clock.now() : undefined,
      },
      'checkpoint committed',
    );
    return { manifest, uploadedBytes };
  } catch (error) {
    progress.stop();
    slog.error({ err: error instanceof Error ? error.message : String(error) }, 'checkpoint upload failed; letting the task run on');
    await store.deleteObjects([snapshotId], ['manifest', 'images', 'files', 'criuLog']).catch(() => undefined);
    task.continueTree();
    task.resumeOutput();
    throw error;
  } finally {
    await rm(imagesDir, { recursive: true, force: true });
  }
}
