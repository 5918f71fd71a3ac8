// How many chunk workers the agent runs: the cores the container may use (its cgroup CPU quota and CPU affinity) but the main thread's, capped by a setting.
import os from 'node:os';
import { readIfThere } from '../shared/read-if-there.ts';

/**
 * The cores a cgroup's CPU quota allows, rounded up; undefined without a quota. Reads cgroup v2's `cpu.max`
 * ("QUOTA PERIOD" or "max PERIOD") or cgroup v1's cfs_quota_us and cfs_period_us.
 */
export function quotaCores(read: (file: string) => string | undefined): number | undefined {
  const v2 = read('/sys/fs/cgroup/cpu.max')?.trim().split(/\s+/);
  let quota: number | undefined;
  let period: number | undefined;
  if (v2 && v2.length === 2) {
    quota = v2[0] === 'max' ? undefined : Number(v2[0]);
    period = Number(v2[1]);
  } else {
    const q = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')?.trim());
    const p = Number(read('/sys/fs/cgroup/cpu/cpu.cfs_period_us')?.trim());
    if (q > 0) [quota, period] = [q, p];
  }
  if (quota === undefined || !Number.isFinite(quota) || !period || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return Math.max(1, Math.ceil(quota / period));
}

/** The cores this process may use: its CPU affinity, lowered to its cgroup's quota. */
export function usableCores(read: (file: string) => string | undefined = readIfThere, affinity = os.availableParallelism()): number {
  const quota = quotaCores(read);
  return Math.max(1, quota === undefined ? affinity : Math.min(affinity, quota));
}

/**
 * Workers for a setting: 'auto' is one per usable core but one, at least one; a number is the count, at most one per usable core.
 * The remaining core is the main thread's: it moves every byte (CRIU's socket in, the PUTs out), about 1.1
 * CPU-seconds a GiB, more than a worker's share since chunks are named by BLAKE3 (agent/transfer/chunk-digest.ts).
 * At two cores one worker kept a checkpoint as fast as two, and the agent 7-15 MiB smaller at its peak (`npm run
 * bench`, docs/performance.md): a worker's heap, its chunks in hand, and one thread fewer on the two cores
 * CRIU and the task share.
 */
export function workerCount(setting: number | 'auto', cores = usableCores()): number {
  return setting === 'auto' ? Math.max(1, cores - 1) : Math.max(1, Math.min(setting, cores));
}
