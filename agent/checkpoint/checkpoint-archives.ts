// The files half of a checkpoint: the tar archives of SPOTSNAP_PATHS and of outside files, spooled or cut into chunks.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { packDirectories, PackSource } from '../archive/tar-pack.ts';
import type { ChunkedStream } from '../store/manifest.ts';
import { settleAll } from '../shared/settle-all.ts';
import { isWithin } from '../task/outside-files.ts';
import type { ChunkUploader } from '../transfer/chunk-uploader.ts';
import { ContentChunker } from '../transfer/content-chunker.ts';
import { LogEvent } from '../shared/log-events.ts';

/** A tar archive being written: its bytes, and the report once it is complete. */
export type Archive = ReturnType<typeof packDirectories>;

/** The archive sources of SPOTSNAP_PATHS: each directory, its entries named without the leading slash. */
export function dirSources(paths: readonly string[]): PackSource[] {
  return paths.map((p) => ({ dir: p, entryPrefix: p.slice(1) }));
}

/** The directory the agent's bundle lives in (/opt/spotsnap in the task image): never part of a task's files. */
export function bundleRoot(): string {
  return path.resolve(path.dirname(process.execPath), '../..');
}

/** Where the outside archive's entries may be put back: the scratch directories, and each captured path elsewhere. */
export function outsideRoots(captured: readonly string[], scratchDirs: readonly string[]): string[] {
  const elsewhere = captured.filter((p) => !scratchDirs.some((dir) => isWithin(p, dir)));
  return [...scratchDirs, ...elsewhere.filter((p) => !elsewhere.some((other) => other !== p && isWithin(p, other)))];
}

/** Writes an archive to a file in `dir` and returns it as an archive read back from there. */
export async function spool(archive: Archive, dir: string, name: string): Promise<Archive> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, name);
  await settleAll<unknown>([pipeline(archive.stream, createWriteStream(file)), archive.done]);
  return { stream: createReadStream(file), done: archive.done };
}

/** Cuts an archive's stream into chunks for the uploader. */
export async function chunkArchive(archive: Archive, uploader: ChunkUploader, log: Logger): Promise<ChunkedStream> {
  const chunker = new ContentChunker();
  const stream: ChunkedStream = { bytes: 0, chunks: [] };
  try {
    for await (const piece of archive.stream) {
      const data = piece as Buffer;
      stream.bytes += data.length;
      await chunker.push(data, uploader.addingTo(stream.chunks));
    }
    await chunker.flush(uploader.addingTo(stream.chunks));
  } catch (error) {
    archive.stream.destroy();
    await archive.done.catch(() => undefined);
    throw error;
  }
  const report = await archive.done;
  if (report.skipped.length > 0)
    log.warn(
      { event: LogEvent.checkpointFilesLeftOut, skipped: report.skipped.length },
      'left out of the snapshot: files that are not regular files, directories or symlinks',
    );
  return stream;
}
