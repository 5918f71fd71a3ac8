// Extracts a snapshot archive without ever writing outside the allowed directories, and can undo what it created.
import { chown, lstat, mkdir, open, realpath, rm, symlink, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { settleAll } from './settle-all.ts';
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
  /** Every path written must lie inside one of these (absolute) directories. */
  allowedRoots: readonly string[];
}

export interface ExtractResult {
  entries: number;
  /** Paths that did not exist before, deepest last: what `undoExtraction` removes. */
  created: string[];
}

const MAX_NAME_BYTES = 4096;

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
  if (type !== 'file' && type !== 'directory' && type !== 'symlink') {
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

/** Extracts every entry; on the first bad entry it stops and rejects (undo with `undoExtraction`). */
export async function extractArchive(input: Readable, options: ExtractOptions, result: ExtractResult = { entries: 0, created: [] }): Promise<ExtractResult> {
  const roots = options.allowedRoots.map((r) => path.resolve(r));
  const opts = { root: path.resolve(options.root), allowedRoots: roots };
  const extract = tar.extract();
  const isRoot = process.getuid?.() === 0;

  let current: Readable | undefined;

  const consume = (async () => {
    for await (const entry of extract) {
      current = entry as unknown as Readable;
      const header = entry.header;
      const target = targetOf(header, opts);
      await ensureParent(path.dirname(target), roots, result);
      // The real parent (after any symlinks) must still be inside: a symlinked directory cannot redirect writes.
      // An allowed root itself is the one entry whose parent lies outside.
      const realParent = await realpath(path.dirname(target));
      if (!roots.includes(target) && !inside(realParent, roots)) {
        throw new UnsafeArchiveError(header.name, `its directory resolves to ${realParent}, outside ${roots.join(', ')}`);
      }
      const existed = await exists(target);
      if (header.type === 'directory') {
        if (!existed) await mkdir(target, { mode: header.mode ?? 0o755 });
        entry.resume();
      } else {
        if (existed) {
          const st = await lstat(target);
          if (st.isDirectory()) throw new UnsafeArchiveError(header.name, 'a directory is in the way of a file');
          await unlink(target);
        }
        if (header.type === 'symlink') {
          await symlink(header.linkname!, target);
          entry.resume();
        } else {
          // tar-stream's entries are streamx streams: iterate them (Node's pipeline can miss their errors and hang).
          const file = await open(target, 'wx', header.mode ?? 0o644);
          try {
            for await (const chunk of entry) await file.write(chunk as Buffer);
          } finally {
            await file.close();
          }
          if (header.mtime) await utimes(target, header.mtime, header.mtime);
        }
      }
      if (!existed) result.created.push(target);
      if (isRoot && header.uid !== undefined && header.gid !== undefined && header.type !== 'symlink') {
        await chown(target, header.uid, header.gid).catch(() => undefined);
      }
      result.entries++;
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

async function ensureParent(dir: string, roots: readonly string[], result: ExtractResult): Promise<void> {
  if (await exists(dir)) return;
  if (!inside(dir, roots)) {
    // A root itself may be missing in a fresh container: create it and what leads to it.
    if (!roots.some((r) => r.startsWith(`${dir}/`))) throw new UnsafeArchiveError(dir, 'directory outside the allowed roots');
  }
  await ensureParent(path.dirname(dir), roots, result);
  await mkdir(dir);
  result.created.push(dir);
}

/** Removes what an extraction created, deepest first; files it overwrote keep their snapshot content. */
export async function undoExtraction(result: ExtractResult): Promise<void> {
  for (const p of [...result.created].reverse()) await rm(p, { recursive: true, force: true });
}
