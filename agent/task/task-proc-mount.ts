// Gives the task a /proc of its own PID namespace (in a mount namespace of its own): the init's prelude, its status, unshare's arguments.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { findExecutable } from './find-executable.ts';
import { mountFlags, procMasks, procMount, readOwnMounts, type MountInfoEntry, type ProcMask } from './mount-info.ts';

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
 * and moves the new one in its place (with the container's own tmpfs masks bound onto it first), then mirrors the
 * other masks. Nothing it does can stop the command from running:
 * if proc cannot be mounted, the container's /proc stays. It reports `proc OUTCOME` on `statusFd`.
 */
export function procPrelude(tools: ProcPreludeTools, procOptions: readonly string[], masks: readonly ProcMask[], statusFd = 3): string {
  const mount = shellQuote(tools.mount);
  const umount = shellQuote(tools.umount);
  const stage = shellQuote(tools.stagingDir);
  const options = shellQuote(mountFlags(procOptions).join(',') || 'defaults');
  // An empty tmpfs over part of /proc is taken from the container itself, bound before its /proc goes: a bind of
  // a container mount is external to CRIU (bound again from the new container at restore), where a tmpfs of the
  // task's own would be archived with GNU tar, which minimal images do not have.
  const tmpfsMasks = masks.filter((mask) => mask.kind === 'tmpfs');
  const lines = [
    'exec </dev/null',
    'spotsnap_proc=container',
    'spotsnap_masks=ok',
    `if ${mount} -t proc -o ${options} proc ${stage} 2>/dev/null; then`,
    ...tmpfsMasks.map((mask) => {
      const from = shellQuote(mask.path);
      const to = shellQuote(`${tools.stagingDir}${mask.path.slice('/proc'.length)}`);
      return `  { ${mount} --bind ${from} ${to}${mask.readOnly ? ` && ${mount} -o remount,bind,ro ${to}` : ''}; } 2>/dev/null || spotsnap_masks=partial`;
    }),
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
        return undefined;
      default: {
        const unknown: never = mask;
        throw new Error(`unknown kind of /proc mask: ${JSON.stringify(unknown)}`);
      }
    }
  });
  lines.push('[ "$spotsnap_proc" = own ] && [ "$spotsnap_masks" = partial ] && spotsnap_proc=partial');
  if (maskLines.some((line) => line !== undefined)) {
    lines.push('if [ "$spotsnap_proc" = own ]; then');
    for (const line of maskLines) if (line !== undefined) lines.push(`  { ${line}; } 2>/dev/null || spotsnap_proc=partial`);
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
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
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
    '--pid',
    '--fork',
    '--ipc',
    ...(withPrelude ? ['--mount', '--propagation', 'private'] : ['--mount-proc', '--propagation', 'private']),
    setsid,
    '/bin/sh',
    '-c',
    initScript,
    'spotsnap-task',
    ...command,
  ];
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
