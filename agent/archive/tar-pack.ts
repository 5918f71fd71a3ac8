// Streams directories into a tar archive (regular files, directories, symlinks, named FIFOs) without holding files in memory.
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { deviceNumbers, isHarmlessCharDevice } from './special-files.ts';

export interface PackSource {
  /** Directory to archive. */
  dir: string;
  /** Name prefix of its entries: '' for names relative to dir, or e.g. 'work' for /work. */
  entryPrefix: string;
}

/** What was left out of an archive (sockets, devices), for the log. */
export interface PackReport {
  files: number;
  skipped: string[];
}

/** Starts writing the archive; read it from `stream`, and await `done` for the report or the first error. */
export function packDirectories(sources: readonly PackSource[]): { stream: Readable; done: Promise<PackReport> } {
  return packWith(async (pack, report) => {
    for (const source of sources) await addTree(pack, source.dir, source.entryPrefix, report);
  });
}

/** Runs `add` against a new archive and returns its readable side and the report. */
function packWith(add: (pack: tar.Pack, report: PackReport) => Promise<void>): { stream: Readable; done: Promise<PackReport> } {
  const pack = tar.pack();
  const report: PackReport = { files: 0, skipped: [] };
  let finished = false;
  // tar-stream's streams are streamx streams; Node's SDK and pipeline get a Node Readable.
  const stream = Readable.from(pack as unknown as AsyncIterable<Buffer>, { objectMode: false });
  // A reader that gives up (a failed upload) must not leave the packer waiting forever.
  stream.once('close', () => {
    if (!finished) pack.destroy(new Error("the archive's reader stopped before the end"));
  });
  const done = (async () => {
    try {
      await add(pack, report);
      pack.finalize();
      return report;
    } catch (error) {
      pack.destroy(error as Error);
      throw error;
    } finally {
      finished = true;
    }
  })();
  return { stream, done };
}

/**
 * Starts writing an archive of exactly these absolute paths, each as one entry named without its leading "/"
 * (a directory's entry only, not its contents), in the order given: parents before what they hold.
 */
export function packPaths(paths: readonly string[]): { stream: Readable; done: Promise<PackReport> } {
  return packWith(async (pack, report) => {
    for (const full of paths) {
      const st = await lstat(full).catch(() => undefined);
      // Gone between the plan and the archive: a file the task removed before it was frozen is not needed.
      if (!st) continue;
      await addOne(pack, full, full.slice(1), st, report);
    }
  });
}

async function addTree(pack: tar.Pack, dir: string, entryName: string, report: PackReport): Promise<void> {
  if (entryName !== '') await addOne(pack, dir, entryName, await lstat(dir), report);
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const full = path.join(dir, name);
    const childName = entryName === '' ? name : `${entryName}/${name}`;
    const st = await lstat(full);
    if (st.isDirectory()) await addTree(pack, full, childName, report);
    else await addOne(pack, full, childName, st, report);
  }
}

/**
 * Adds one entry: a file with its bytes, a directory's entry alone, a symlink, a named FIFO, a harmless character
 * device; anything else is skipped (a socket file is CRIU's to recreate, from the socket that bound it).
 */
async function addOne(pack: tar.Pack, full: string, name: string, st: Stats, report: PackReport): Promise<void> {
  const header = { name, mode: st.mode & 0o7777, mtime: st.mtime, uid: st.uid, gid: st.gid };
  if (st.isDirectory()) {
    await addEntry(pack, { ...header, type: 'directory' });
  } else if (st.isFile()) {
    const entry = pack.entry({ ...header, type: 'file', size: st.size });
    await pipeline(limited(full, st.size), entry);
    report.files++;
  } else if (st.isSymbolicLink()) {
    await addEntry(pack, { ...header, type: 'symlink', linkname: await readlink(full) });
  } else if (st.isCharacterDevice() && isHarmlessCharDevice(deviceNumbers(st.rdev).major, deviceNumbers(st.rdev).minor)) {
    // A device node the task made of its own (a null device in its working directory); others are never archived.
    await addEntry(pack, { ...header, type: 'character-device', devmajor: deviceNumbers(st.rdev).major, devminor: deviceNumbers(st.rdev).minor });
  } else if (st.isFIFO()) {
    // A named FIFO's bytes belong to its open ends, which CRIU dumps; the file itself must exist at restore.
    await addEntry(pack, { ...header, type: 'fifo' });
  } else {
    report.skipped.push(full);
  }
}

/** Exactly `size` bytes of the file (the size in the header), even for an empty file. */
function limited(file: string, size: number): Readable {
  return size === 0 ? Readable.from([]) : createReadStream(file, { start: 0, end: size - 1 });
}

function addEntry(pack: tar.Pack, header: Partial<tar.Header> & { name: string }): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, (error) => (error ? reject(error) : resolve())));
}
