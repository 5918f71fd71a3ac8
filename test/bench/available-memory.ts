// The memory this machine has free for the benchmark's tasks, images and objects now: /proc/meminfo's MemAvailable.
import { readFileSync } from 'node:fs';

/** MemAvailable in bytes; throws, naming the file, where it cannot be read (not Linux, or no /proc). */
export function availableMemoryBytes(): number {
  const kib = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  if (kib === undefined) throw new Error('bench: /proc/meminfo has no MemAvailable line; the benchmark needs Linux 3.14 or later');
  return Number(kib) * 1024;
}
