// Reads a process tree from /proc and signals it: the task's namespace init and every descendant.
import { readdirSync, readFileSync } from 'node:fs';
import { systemClock, type Clock } from '../shared/clock.ts';

/**
 * Direct children of a process: those of every one of its threads, from /proc/PID/task/TID/children (a child
 * belongs to the thread that forked it, so a process whose threads fork, like a JVM, has children under several).
 * Empty when it is gone.
 */
export function childPids(pid: number): number[] {
  let threads: string[];
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const tid of threads) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/)) if (child) children.push(Number(child));
    } catch {
      // the thread ended meanwhile
    }
  }
  return children;
}

/** The process and all its descendants, parents first. */
export function treePids(root: number): number[] {
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...childPids(pid));
  }
  return out;
}

/** Sends a signal, ignoring a process that is already gone. Returns whether it was delivered. */
export function signalQuietly(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Linux reports process times in USER_HZ ticks, 100 per second on every architecture it runs containers on. */
const TICKS_PER_SECOND = 100;

/**
 * CPU time of a tree in ms: user and system time of every live process, plus what the root's finished
 * children used (cutime and cstime, which include their own waited-for descendants).
 */
export function treeCpuMs(root: number): number {
  const ticks = sumOverTree(root, 'stat', (text, pid) => {
    // Fields after the command name, which may hold spaces, start at field 3 (state).
    const fields = text.replace(/^.*\) /s, '').split(' ');
    return Number(fields[11]) + Number(fields[12]) + (pid === root ? Number(fields[13]) + Number(fields[14]) : 0);
  });
  return Math.round((ticks * 1000) / TICKS_PER_SECOND);
}

/**
 * Anonymous and shared-memory pages of the process and its descendants, in bytes (RssAnon + RssShmem from
 * /proc): about what CRIU dumps as pages, unlike VmRSS, which counts the binaries and libraries mapped too.
 */
export function treeAnonymousBytes(root: number): number {
  return sumOverTree(root, 'status', (text) => statusBytes(text, 'RssAnon') + statusBytes(text, 'RssShmem'));
}

/** Resident memory of the process and its descendants, in bytes (VmRSS from /proc). */
export function treeResidentBytes(root: number): number {
  return sumOverTree(root, 'status', (text) => statusBytes(text, 'VmRSS'));
}

/** A `NAME:   N kB` figure of /proc/PID/status, in bytes; 0 when the kernel does not show it. */
export function statusBytes(status: string, name: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssShmem'): number {
  return Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0) * 1024;
}

/** Adds up a figure read from /proc/PID/<file> over the tree; a process gone meanwhile counts nothing. */
function sumOverTree(root: number, file: 'stat' | 'status', figure: (text: string, pid: number) => number): number {
  let total = 0;
  for (const pid of treePids(root)) {
    try {
      total += figure(readFileSync(`/proc/${pid}/${file}`, 'utf8'), pid);
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

/** Waits until `read()` returns a value or the deadline passes, checking every `intervalMs` of `clock`. */
export async function pollFor<T>(read: () => T | undefined, timeoutMs: number, intervalMs = 10, clock: Clock = systemClock): Promise<T | undefined> {
  const deadline = clock.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined) return value;
    if (clock.now() >= deadline) return undefined;
    await clock.sleep(intervalMs);
  }
}
