// Extracts a snapshot archive without ever writing outside the allowed directories, and can undo what it created.
import { constants } from 'node:fs';
import { chmod, lchown, lstat, lutimes, mkdir, open, realpath, rm, symlink, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { resolveExistingPrefix } from '../config/config.ts';
import { isHarmlessCharDevice, makeCharDevice, makeFifo } from './special-files.ts';
import { settleAll } from '../shared/settle-all.ts';
import { TarHeaderGuard } from './tar-header-guard.ts';

/** An archive entry that would escape its target or is of a kind snapshots never contain. */
export class UnsafeArchiveError extends Error {
  constructor(entry: string, why: string) {
    super(`refusing archive entry ${JSON.stringify(entry.slice(0, 300))}: ${why}`);
    this.name = 'UnsafeArchiveError';
  }
}

export interface ExtractOptions {
  /** Entry names are relative to this directory. */
  root: string;
  /** Every path written must lie inside one of these (absolute) directories, both by name and on disk. */
  allowedRoots: readonly string[];
}

export interface ExtractResult {
  entries: number;
  /** Paths that did not exist before, deepest last: what `undoExtraction` removes. */
  created: string[];
}

const MAX_NAME_BYTES = 4096;
/** Opens the final component only if it is not a symlink (ELOOP otherwise). */
const NEW_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const DIRECTORY = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** Opening a FIFO to read without a writer blocks, unless non-blocking. */
const FIFO = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

function inside(candidate: string, roots: readonly string[]): boolean {
  return roots.some((root) => candidate === root || candidate.startsWith(root.endsWith('/') ? root : `${root}/`));
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** Checks an entry's name and kind and returns the absolute path it would be written to. */
export function targetOf(header: tar.Header, options: ExtractOptions): string {
  const name = header.name;
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new UnsafeArchiveError(name, `name longer than ${MAX_NAME_BYTES} bytes`);
  if (name.includes('\0')) throw new UnsafeArchiveError(name, 'name contains a NUL byte');
  if (path.isAbsolute(name)) throw new UnsafeArchiveError(name, 'absolute name');
  if (name.split('/').includes('..')) throw new UnsafeArchiveError(name, '".." in name');
  const type = header.type ?? 'file';
  if (type === 'character-device' && !isHarmlessCharDevice(header.devmajor ?? -1, header.devminor ?? -1)) {
    throw new UnsafeArchiveError(
      name,
      `character device ${header.devmajor}:${header.devminor} is not one a snapshot may recreate (only null, zero, full, random, urandom, tty, ptmx)`,
    );
  }
  if (type !== 'file' && type !== 'directory' && type !== 'symlink' && type !== 'fifo' && type !== 'character-device') {
    throw new UnsafeArchiveError(name, `entry type "${type}" is never part of a snapshot`);
  }
  const target = path.resolve(options.root, name);
  if (!inside(target, options.allowedRoots)) throw new UnsafeArchiveError(name, `outside ${options.allowedRoots.join(', ')}`);
  if (type === 'symlink') {
    const link = header.linkname ?? '';
    const pointsTo = path.resolve(path.dirname(target), link);
    if (link === '' || !inside(pointsTo, options.allowedRoots)) {
      throw new UnsafeArchiveError(name, `symlink to ${JSON.stringify(link)} points outside ${options.allowedRoots.join(', ')}`);
    }
  }
  return target;
}

/**
 * The on-disk check made right before every write: the real path of the target's directory (every symlink on the
 * way resolved), joined with the target's own name (never followed), must lie inside an allowed root as it is on
 * disk. `ancestorOk` also lets through the directories that lead to a missing root, which extraction creates.
 */
class PhysicalRoots {
  private readonly roots: readonly string[];

  /**
   * The roots as they are on disk now: a root under a symlinked directory is checked against where the link leads.
   * A root's own name is kept: a root may be a file or a symlink (files captured outside SPOTSNAP_PATHS).
   */
  constructor(roots: readonly string[]) {
    this.roots = roots.map((r) => path.join(resolveExistingPrefix(path.dirname(r)), path.basename(r)));
  }

  async check(target: string, entry: string, ancestorOk = false): Promise<void> {
    let realParent: string;
    try {
      realParent = await realpath(path.dirname(target));
    } catch (error) {
      throw new UnsafeArchiveError(
        entry,
        `its directory ${path.dirname(target)} cannot be resolved (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
      );
    }
    const physical = path.join(realParent, path.basename(target));
    if (inside(physical, this.roots)) return;
    if (ancestorOk && this.roots.some((r) => r.startsWith(`${physical}/`))) return;
    throw new UnsafeArchiveError(entry, `its directory resolves to ${realParent}, outside ${this.roots.join(', ')}`);
  }
}

/** Owner first (it clears setuid and setgid), then the exact mode, then the time, all through the open descriptor. */
async function applyMetadata(handle: FileHandle, header: tar.Header, isRoot: boolean, fallbackMode: number): Promise<void> {
  if (isRoot && header.uid !== undefined && header.gid !== undefined) await handle.chown(header.uid, header.gid).catch(() => undefined);
  await handle.chmod((header.mode ?? fallbackMode) & 0o7777);
  if (header.mtime) await handle.utimes(header.mtime, header.mtime);
}

/** Extracts every entry; on the first bad entry it stops and rejects (undo with `undoExtraction`). */
export async function extractArchive(input: Readable, options: ExtractOptions, result: ExtractResult = { entries: 0, created: [] }): Promise<ExtractResult> {
  const roots = options.allowedRoots.map((r) => path.resolve(r));
  const opts = { root: path.resolve(options.root), allowedRoots: roots };
  const extract = tar.extract();
  const isRoot = process.getuid?.() === 0;
  const physical = new PhysicalRoots(roots);
  // Directories get their owner, mode and time after every entry is in: a read-only directory must not stop the
  // entries inside it, and their creation would change its time. The latest entry for a path wins.
  const directories = new Map<string, tar.Header>();

  let current: Readable | undefined;

  const consume = (async () => {
    for await (const entry of extract) {
      current = entry as unknown as Readable;
      const header = entry.header;
      const target = targetOf(header, opts);
      await ensureParent(path.dirname(target), header.name, roots, physical, result);
      // Checked on disk right before this entry's writes (nothing else writes in between); every write below also
      // leaves the final component unfollowed: unlink, symlink, mkdir, lchown, lutimes, O_NOFOLLOW opens.
      await physical.check(target, header.name);
      const existing = await lstat(target).catch(() => undefined);
      if (header.type === 'directory') {
        if (existing && !existing.isDirectory()) {
          throw new UnsafeArchiveError(header.name, `a directory entry over an existing ${existing.isSymbolicLink() ? 'symlink' : 'file'}`);
        }
        if (!existing) await mkdir(target, { mode: 0o700 });
        directories.delete(target);
        directories.set(target, header);
        entry.resume();
      } else {
        if (existing) {
          if (existing.isDirectory()) throw new UnsafeArchiveError(header.name, 'a directory is in the way of a file');
          await unlink(target);
        }
        if (header.type === 'symlink') {
          await symlink(header.linkname!, target);
          entry.resume();
          // Linux has no mode for symlinks; owner and time are the link's own (lchown, lutimes never follow it).
          if (isRoot && header.uid !== undefined && header.gid !== undefined) await lchown(target, header.uid, header.gid).catch(() => undefined);
          if (header.mtime) await lutimes(target, header.mtime, header.mtime);
        } else if (header.type === 'character-device') {
          // Only the harmless ones (checked with the name): a task may hold /dev/null-like nodes of its own.
          await makeCharDevice(target, header.devmajor!, header.devminor!);
          entry.resume();
          // Not opened (a tty node cannot be without a terminal): owner, mode and time set on the node just made.
          if (isRoot && header.uid !== undefined && header.gid !== undefined) await lchown(target, header.uid, header.gid).catch(() => undefined);
          await chmod(target, (header.mode ?? 0o644) & 0o7777);
          if (header.mtime) await lutimes(target, header.mtime, header.mtime);
        } else if (header.type === 'fifo') {
          // A named FIFO is put back as what it is (CRIU reopens a task's FIFO by its path); it holds no bytes.
          await makeFifo(target);
          entry.resume();
          const fifo = await open(target, FIFO, 0o600);
          try {
            await applyMetadata(fifo, header, isRoot, 0o644);
          } finally {
            await fifo.close();
          }
        } else {
          const file = await open(target, NEW_FILE, 0o600);
          try {
            // tar-stream's entries are streamx streams: iterate them (Node's pipeline can miss their errors and hang).
            for await (const chunk of entry) await file.write(chunk as Buffer);
            await applyMetadata(file, header, isRoot, 0o644);
          } finally {
            await file.close();
          }
        }
      }
      if (!existing) result.created.push(target);
      result.entries++;
    }
    for (const [dir, header] of [...directories].reverse()) {
      await physical.check(dir, header.name);
      const handle = await open(dir, DIRECTORY);
      try {
        await applyMetadata(handle, header, isRoot, 0o755);
      } finally {
        await handle.close();
      }
    }
  })().catch((error: unknown) => {
    extract.destroy();
    input.destroy();
    throw error;
  });
  const feed = pipeline(input, new TarHeaderGuard(), extract).catch((error: unknown) => {
    current?.destroy(error as Error);
    return consume.then(() => Promise.reject(error));
  });
  await settleAll([feed, consume]);
  return result;
}

async function ensureParent(dir: string, entry: string, roots: readonly string[], physical: PhysicalRoots, result: ExtractResult): Promise<void> {
  if (await exists(dir)) return;
  if (!inside(dir, roots)) {
    // A root itself may be missing in a fresh container: create it and what leads to it.
    if (!roots.some((r) => r.startsWith(`${dir}/`))) throw new UnsafeArchiveError(dir, 'directory outside the allowed roots');
  }
  await ensureParent(path.dirname(dir), entry, roots, physical, result);
  await physical.check(dir, entry, true);
  await mkdir(dir);
  result.created.push(dir);
}

/** Removes what an extraction created, deepest first; files it overwrote keep their snapshot content. */
export async function undoExtraction(result: ExtractResult): Promise<void> {
  for (const p of [...result.created].reverse()) await rm(p, { recursive: true, force: true });
}
