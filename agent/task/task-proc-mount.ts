// Gives the task a /proc of its own PID namespace (in a mount namespace of its own) and the CRIU flags that carry it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { findExecutable } from './find-executable.ts';

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

function mountFlags(options: readonly string[]): string[] {
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

/** Quotes a word for /bin/sh. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The programs and the empty directory the prelude needs. */
export interface ProcPreludeTools {
  /** util-linux `mount` (the bundle's). */
  mount: string;
  /** util-linux `umount` (the bundle's). */
  umount: string;
  /** An existing empty directory where the new proc is mounted before it is moved to /proc (the bundle's). */
  stagingDir: string;
}

/** What the prelude reports on the status descriptor before the command starts, as `proc WORD`. */
export type ProcOutcome =
  /** The task has its own /proc, masked as the container's was. */
  | 'own'
  /** Its own /proc, but some mask could not be applied. */
  | 'partial'
  /** No proc could be mounted: the task sees the container's /proc, as before. */
  | 'container'
  /** The container's /proc was detached and no new one could take its place. */
  | 'none';

/**
 * Shell text run by the namespace init (PID 1 of the task's namespace, in its private mount namespace) before the
 * command: reopens stdin inside the new namespace (a descriptor opened in the container's one cannot be dumped),
 * mounts a proc of the new PID namespace on a staging directory, detaches the container's /proc with its masks
 * and moves the new one in its place, then mirrors the masks. Nothing it does can stop the command from running:
 * if proc cannot be mounted, the container's /proc stays. It reports `proc OUTCOME` on `statusFd`.
 */
export function procPrelude(tools: ProcPreludeTools, procOptions: readonly string[], masks: readonly ProcMask[], statusFd = 3): string {
  const mount = shellQuote(tools.mount);
  const umount = shellQuote(tools.umount);
  const stage = shellQuote(tools.stagingDir);
  const options = shellQuote(mountFlags(procOptions).join(',') || 'defaults');
  const lines = [
    'exec </dev/null',
    'spotsnap_proc=container',
    `if ${mount} -t proc -o ${options} proc ${stage} 2>/dev/null; then`,
    `  if ${umount} -l /proc 2>/dev/null && ${mount} --move ${stage} /proc 2>/dev/null; then spotsnap_proc=own`,
    `  else ${umount} -l ${stage} 2>/dev/null; ${mount} -t proc -o ${options} proc /proc 2>/dev/null && spotsnap_proc=own || spotsnap_proc=none; fi`,
    'fi',
  ];
  const maskLines = masks.map((mask) => {
    const target = shellQuote(mask.path);
    switch (mask.kind) {
      case 'readonly':
        return `${mount} --bind ${target} ${target} && ${mount} -o ${shellQuote(['remount', 'bind', ...new Set(['ro', ...mask.options])].join(','))} ${target}`;
      case 'file':
        return `${mount} --bind ${shellQuote(mask.source)} ${target}${mask.readOnly ? ` && ${mount} -o remount,bind,ro ${target}` : ''}`;
      case 'tmpfs':
        return `${mount} -t tmpfs -o ${mask.readOnly ? 'ro' : 'rw'} tmpfs ${target}`;
    }
  });
  if (maskLines.length > 0) {
    lines.push('if [ "$spotsnap_proc" = own ]; then');
    for (const line of maskLines) lines.push(`  { ${line}; } 2>/dev/null || spotsnap_proc=partial`);
    lines.push('fi');
  }
  lines.push(`echo "proc $spotsnap_proc" >&${statusFd}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The script of the namespace init: the prelude (or, without one, just stdin reopened inside the new mount
 * namespace), then the command with descriptor 3 closed, then its exit status on descriptor 3.
 */
export function namespaceInitScript(prelude: string | undefined): string {
  return `${prelude ?? 'exec </dev/null\n'}"$@" 3>&-; echo $? >&3`;
}

/** The init's status text: `proc OUTCOME` from the prelude (absent after a restore) and the command's exit code. */
export function parseInitStatus(text: string): { proc?: ProcOutcome; code?: number } {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const proc = lines.map((l) => /^proc (own|partial|container|none)$/.exec(l)?.[1]).find(Boolean) as ProcOutcome | undefined;
  const last = lines.at(-1);
  const code = last !== undefined && /^\d+$/.test(last) ? Number(last) : undefined;
  return { ...(proc ? { proc } : {}), ...(code !== undefined ? { code } : {}) };
}

/**
 * The arguments of `unshare` that start `initScript` as PID 1 of a new PID namespace in a private mount namespace
 * and an IPC namespace of its own.
 * With no prelude tools, unshare's own `--mount-proc` mounts the new proc over the container's (unmasked).
 */
export function unshareArgs(setsid: string, initScript: string, command: readonly string[], withPrelude: boolean): string[] {
  return [
    // An IPC namespace of its own, so that CRIU carries the task's SysV message queues, semaphores and shared memory.
    '--pid', '--fork', '--ipc',
    ...(withPrelude ? ['--mount', '--propagation', 'private'] : ['--mount-proc', '--propagation', 'private']),
    setsid, '/bin/sh', '-c', initScript, 'spotsnap-task', ...command,
  ];
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

/**
 * The bundle's `mount` and `umount` and its staging directory (docker/make-bundle.sh puts them beside `unshare`),
 * or undefined where the agent runs without them (then unshare's own `--mount-proc` gives an unmasked /proc).
 */
export function bundledProcTools(): ProcPreludeTools | undefined {
  const mount = findExecutable('mount');
  const umount = findExecutable('umount');
  const unshare = findExecutable('unshare');
  if (!mount || !umount || !unshare) return undefined;
  const stagingDir = path.resolve(path.dirname(unshare), '../runtime/proc-stage');
  return existsSync(stagingDir) ? { mount, umount, stagingDir } : undefined;
}

/** The container's mount points that are files, for CRIU's `--external mnt[]` list (empty where mountinfo is unreadable). */
export function containerFileMounts(): string[] {
  try {
    return fileBindMountpoints(readOwnMounts(), isDirectoryPath);
  } catch {
    return [];
  }
}

/** The init script and unshare arguments that start `command` with a /proc of its own PID namespace. */
export function taskLaunch(setsid: string, command: readonly string[]): string[] {
  let mounts: MountInfoEntry[] = [];
  try {
    mounts = readOwnMounts();
  } catch {
    // no mountinfo: no masks to mirror
  }
  const tools = bundledProcTools();
  const proc = procMount(mounts);
  const prelude = tools && proc ? procPrelude(tools, proc.mountOptions, procMasks(mounts)) : undefined;
  return unshareArgs(setsid, namespaceInitScript(prelude), command, prelude !== undefined);
}
