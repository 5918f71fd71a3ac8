// Finds the files a frozen task needs that lie outside SPOTSNAP_PATHS: what it changed is captured, what came with the image is referenced.
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ReferencedFile } from '../store/manifest.ts';

/** What a checkpoint takes along from outside SPOTSNAP_PATHS. */
export interface OutsidePlan {
  /** Absolute paths (files, directories, symlinks) created or changed since the task started, parents first. */
  captured: string[];
  /** Files the task has open or mapped that it did not change. */
  referenced: ReferencedFile[];
}

export interface OutsidePlanOptions {
  /** Every process of the frozen tree (host PIDs). */
  pids: readonly number[];
  /** SPOTSNAP_PATHS: captured whole already. */
  paths: readonly string[];
  /** Directories where tasks keep scratch files (/tmp, /var/tmp, /dev/shm, $TMPDIR): walked for what changed. */
  scratchDirs: readonly string[];
  /** A file whose status changed at or after this time (ms since the epoch) counts as the task's own. */
  changedSinceMs: number;
  /** Never captured nor referenced: the agent's own directories. */
  exclude: readonly string[];
}

/** Where tasks keep scratch files, besides $TMPDIR. */
export const SCRATCH_DIRS: readonly string[] = ['/tmp', '/var/tmp', '/dev/shm'];

/** Kernel filesystems and devices: what CRIU itself handles or the new container provides. */
const SYSTEM_ROOTS: readonly string[] = ['/proc', '/sys', '/dev'];

/** Whether `candidate` is `root` or lies below it. */
export function isWithin(candidate: string, root: string): boolean {
  return candidate === root || candidate.startsWith(root === '/' ? '/' : `${root}/`);
}

/** The scratch directories of a task with this environment, each once. */
export function scratchDirsFor(env: NodeJS.ProcessEnv): string[] {
  const tmpdir = env.TMPDIR?.trim();
  const dirs = [...SCRATCH_DIRS, ...(tmpdir && path.isAbsolute(tmpdir) && path.resolve(tmpdir) !== '/' ? [path.resolve(tmpdir)] : [])];
  return [...new Set(dirs)];
}

/** The files a process has open, its working directory, and the files it maps, as absolute paths. */
async function heldPaths(pid: number): Promise<string[]> {
  const held: string[] = [];
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (target.startsWith('/')) held.push(target);
  }
  const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '');
  if (cwd.startsWith('/')) held.push(cwd);
  const maps = await readFile(`/proc/${pid}/maps`, 'utf8').catch(() => '');
  for (const line of maps.split('\n')) {
    // address perms offset dev inode pathname: the name is everything after the fifth field.
    const name = /^\S+ \S+ \S+ \S+ \d+\s+(\/.*)$/.exec(line)?.[1];
    if (name) held.push(name);
  }
  return held;
}

/**
 * Plans what to take along. Unlinked files (" (deleted)") are CRIU's ghost files and travel in its images;
 * system filesystems are the new container's own (except /dev/shm, where tasks keep shared memory).
 */
export async function planOutsideFiles(o: OutsidePlanOptions): Promise<OutsidePlan> {
  // "/" is the container's own root: the task's working directory or an open handle on it is never a file to take.
  const skipped = (p: string): boolean =>
    p === '/' ||
    p.endsWith(' (deleted)') ||
    o.paths.some((root) => isWithin(p, root)) ||
    o.exclude.some((root) => isWithin(p, root)) ||
    (SYSTEM_ROOTS.some((root) => isWithin(p, root)) && !isWithin(p, '/dev/shm'));
  const captured = new Set<string>();
  const referenced = new Map<string, ReferencedFile>();
  const changed = (st: { ctimeMs: number; mtimeMs: number }): boolean => Math.max(st.ctimeMs, st.mtimeMs) >= o.changedSinceMs;

  for (const dir of o.scratchDirs) {
    if (skipped(dir)) continue;
    await walkChanged(dir, changed, skipped, captured);
  }
  const held = new Set((await Promise.all(o.pids.map(heldPaths))).flat());
  for (const p of [...held].sort()) {
    if (skipped(p) || captured.has(p)) continue;
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    if (changed(st)) {
      if (st.isFile() || st.isDirectory() || st.isSymbolicLink() || st.isFIFO()) captured.add(p);
    } else if (st.isFile()) {
      referenced.set(p, { path: p, bytes: st.size, mtimeMs: Math.trunc(st.mtimeMs) });
    }
  }
  return { captured: [...captured].sort(), referenced: [...referenced.values()] };
}

/** Adds every entry under `dir` that changed since the task started (a changed directory's entry too). */
async function walkChanged(
  dir: string,
  changed: (st: { ctimeMs: number; mtimeMs: number }) => boolean,
  skipped: (p: string) => boolean,
  captured: Set<string>,
): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names.sort()) {
    const full = path.join(dir, name);
    if (skipped(full)) continue;
    const st = await lstat(full).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory()) {
      if (changed(st)) captured.add(full);
      await walkChanged(full, changed, skipped, captured);
    } else if ((st.isFile() || st.isSymbolicLink() || st.isFIFO()) && changed(st)) {
      captured.add(full);
    }
  }
}

/** Throws, naming the file, unless every referenced file is here as it was at the checkpoint. */
export async function checkReferencedFiles(files: readonly ReferencedFile[]): Promise<void> {
  for (const file of files) {
    const st = await stat(file.path).catch(() => undefined);
    if (!st) throw new Error(`the task had ${file.path} open and it is not in this container`);
    if (st.size !== file.bytes || Math.trunc(st.mtimeMs) !== file.mtimeMs) {
      throw new Error(
        `the task had ${file.path} open (${file.bytes} bytes, modified ${new Date(file.mtimeMs).toISOString()}) and here it is ` +
          `${st.size} bytes, modified ${new Date(st.mtimeMs).toISOString()}: the task image or its mounts differ from the checkpoint's`,
      );
    }
  }
}
