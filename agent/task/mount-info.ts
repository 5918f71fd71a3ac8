// Reads the container's mounts (/proc/self/mountinfo): its /proc, what the runtime masked over it, and its file mounts.
import { readFileSync, statSync } from 'node:fs';

/** One line of /proc/PID/mountinfo. */
export interface MountInfoEntry {
  id: number;
  parentId: number;
  /** `major:minor` of the filesystem: equal for every bind of one superblock. */
  majorMinor: string;
  /** The path inside the filesystem that is mounted (`/null` for a bind of /dev/null from /dev's tmpfs). */
  root: string;
  mountPoint: string;
  /** Per-mount options (`ro`, `nosuid`, ...). */
  mountOptions: string[];
  fsType: string;
  source: string;
  superOptions: string[];
}

/** mountinfo writes space, tab, newline and backslash in paths as octal escapes. */
export function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Parses the text of a mountinfo file; a line it cannot read is an error naming the line. */
export function parseMountInfo(text: string): MountInfoEntry[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [left, right] = line.split(' - ');
      const fields = (left ?? '').split(' ');
      const tail = (right ?? '').split(' ');
      if (right === undefined || fields.length < 6 || tail.length < 2) throw new Error(`unreadable mountinfo line: ${JSON.stringify(line)}`);
      return {
        id: Number(fields[0]),
        parentId: Number(fields[1]),
        majorMinor: fields[2]!,
        root: unescapeMountPath(fields[3]!),
        mountPoint: unescapeMountPath(fields[4]!),
        mountOptions: fields[5]!.split(','),
        fsType: tail[0]!,
        source: unescapeMountPath(tail[1]!),
        superOptions: (tail[2] ?? '').split(',').filter(Boolean),
      };
    });
}

/** The mounts of the agent's own mount namespace (the container's). */
export function readOwnMounts(): MountInfoEntry[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** The mounts a container runtime puts over parts of /proc, mirrored onto the task's own /proc. */
export type ProcMask =
  /** A read-only bind of a part of proc itself (`/proc/sys`, `/proc/bus`, ...). */
  | { kind: 'readonly'; path: string; options: string[] }
  /** A file hidden under a bind of another file, usually /dev/null (`/proc/keys`, `/proc/kcore`, ...). */
  | { kind: 'file'; path: string; source: string; readOnly: boolean }
  /** A directory hidden under an empty tmpfs (`/proc/acpi`, `/proc/scsi`, ...). */
  | { kind: 'tmpfs'; path: string; readOnly: boolean };

/** The flags that `mount -o` takes back from a mount's per-mount options (the access-time ones are left alone). */
const MOUNT_FLAGS = new Set(['ro', 'nosuid', 'nodev', 'noexec']);

export function mountFlags(options: readonly string[]): string[] {
  return options.filter((o) => MOUNT_FLAGS.has(o));
}

/** The container's /proc mount (the topmost one at /proc), or undefined when it has none. */
export function procMount(mounts: readonly MountInfoEntry[]): MountInfoEntry | undefined {
  return mounts.filter((m) => m.mountPoint === '/proc' && m.fsType === 'proc').at(-1);
}

function isUnder(child: string, parent: string): boolean {
  return child.startsWith(parent.endsWith('/') ? parent : `${parent}/`);
}

/**
 * The path, in the container, of the file a mask binds over /proc (e.g. `/dev/null`): the mount outside /proc
 * with the same filesystem whose root holds the mask's root, the one mounting the most of it.
 */
function maskSource(mask: MountInfoEntry, mounts: readonly MountInfoEntry[]): string | undefined {
  const holders = mounts
    .filter((m) => m.majorMinor === mask.majorMinor && m.mountPoint !== '/proc' && !isUnder(m.mountPoint, '/proc'))
    .filter((m) => m.root === '/' || mask.root === m.root || isUnder(mask.root, m.root))
    .sort((a, b) => a.root.length - b.root.length);
  const holder = holders[0];
  if (!holder) return undefined;
  const rest = holder.root === '/' ? mask.root : mask.root.slice(holder.root.length);
  return `${holder.mountPoint.replace(/\/$/, '')}${rest}` || '/';
}

/**
 * What the container runtime masked under /proc, in mount order, read from the container's mountinfo.
 * A mask whose source cannot be found is left out (the task then sees that part of its /proc unmasked).
 */
export function procMasks(mounts: readonly MountInfoEntry[]): ProcMask[] {
  const proc = procMount(mounts);
  if (!proc) return [];
  const masks: ProcMask[] = [];
  for (const m of mounts) {
    if (!isUnder(m.mountPoint, '/proc')) continue;
    const readOnly = m.mountOptions.includes('ro');
    if (m.fsType === 'proc' && m.majorMinor === proc.majorMinor) {
      if (readOnly) masks.push({ kind: 'readonly', path: m.mountPoint, options: mountFlags(m.mountOptions) });
    } else if (m.fsType === 'tmpfs' && m.root === '/') {
      masks.push({ kind: 'tmpfs', path: m.mountPoint, readOnly });
    } else {
      const source = maskSource(m, mounts);
      if (source !== undefined) masks.push({ kind: 'file', path: m.mountPoint, source, readOnly });
    }
  }
  return masks;
}

/**
 * Mount points of the container that are files (`/etc/hosts`, `/etc/resolv.conf`, a driver's library), outside /proc.
 * CRIU's autodetection of external mounts names such a bind `/etc/hosts/` and then fails to restore it
 * ("Failed to open_tree /etc/resolv.conf/: Not a directory"), so each gets an explicit `--external mnt[P]:P`.
 */
export function fileBindMountpoints(mounts: readonly MountInfoEntry[], isDirectory: (mountPoint: string) => boolean): string[] {
  const points = mounts
    .map((m) => m.mountPoint)
    .filter((p) => p !== '/proc' && !isUnder(p, '/proc') && p !== '/')
    .filter((p) => !isDirectory(p));
  return [...new Set(points)];
}

/** Whether a path is a directory; a path that cannot be looked at counts as one (CRIU's autodetection then has it). */
export function isDirectoryPath(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return true;
  }
}

/** The container's mount points that are files, for CRIU's `--external mnt[]` list (empty where mountinfo is unreadable). */
export function containerFileMounts(): string[] {
  try {
    return fileBindMountpoints(readOwnMounts(), isDirectoryPath);
  } catch {
    return [];
  }
}
