// How much a background checkpoint may spill into its work dir: half its free space, and on tmpfs half of what the container's memory limit leaves.
import { statfs } from 'node:fs/promises';
import { readIfThere } from '../shared/read-if-there.ts';

/** Filesystems whose files are memory that cannot be reclaimed (statfs f_type): tmpfs and ramfs. */
const MEMORY_FILESYSTEMS = new Set([0x01021994, 0x858458f6]);

function bytesIn(text: string | undefined): number | undefined {
  const value = Number(text?.trim());
  return text !== undefined && text.trim() !== 'max' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/**
 * The bytes that memory the container may still take: its cgroup's limit less what it uses (cgroup v2's
 * memory.max and memory.current, or v1's limit and usage), else the host's MemAvailable.
 */
export function memoryHeadroom(read: (file: string) => string | undefined): number | undefined {
  const v2Max = bytesIn(read('/sys/fs/cgroup/memory.max'));
  const v2Current = bytesIn(read('/sys/fs/cgroup/memory.current'));
  if (v2Max !== undefined && v2Current !== undefined) return Math.max(0, v2Max - v2Current);
  const v1Max = bytesIn(read('/sys/fs/cgroup/memory/memory.limit_in_bytes'));
  const v1Usage = bytesIn(read('/sys/fs/cgroup/memory/memory.usage_in_bytes'));
  // cgroup v1 writes "no limit" as a number near 2^63.
  if (v1Max !== undefined && v1Usage !== undefined && v1Max < 2 ** 60) return Math.max(0, v1Max - v1Usage);
  const available = /^MemAvailable:\s+(\d+) kB$/m.exec(read('/proc/meminfo') ?? '')?.[1];
  return available === undefined ? undefined : Number(available) * 1024;
}

/** What a work dir gives a spill: its limit in bytes, and whether its files are memory (tmpfs, ramfs). */
export interface SpillRoom {
  limitBytes: number;
  inMemory: boolean;
}

/**
 * The spill limit for a work dir: `limitBytes`, at most half the space free there (the other half stays for
 * CRIU's own images and the task's files copied aside while it is frozen, which a spill must never starve),
 * and on tmpfs at most half the memory headroom too: its pages count against the container's memory limit
 * until they are deleted, and a spill must never be what pushes the task out of memory. A limit of 0 when the
 * work dir or, on tmpfs, the headroom cannot be read.
 */
export async function spillRoomFor(workDir: string, limitBytes: number): Promise<SpillRoom> {
  const fs = await statfs(workDir).catch(() => undefined);
  if (!fs) return { limitBytes: 0, inMemory: false };
  const limit = Math.min(limitBytes, Math.floor((Number(fs.bavail) * Number(fs.bsize)) / 2));
  if (!MEMORY_FILESYSTEMS.has(Number(fs.type))) return { limitBytes: limit, inMemory: false };
  const headroom = memoryHeadroom(readIfThere);
  return { limitBytes: headroom === undefined ? 0 : Math.min(limit, Math.floor(headroom / 2)), inMemory: true };
}
