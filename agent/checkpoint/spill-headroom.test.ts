// The spill's bound: half the work dir's free space, and on tmpfs half of what the container's memory limit (v2, v1) or the host leaves.
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryHeadroom, spillRoomFor } from './spill-headroom.ts';

const GiB = 1024 ** 3;

describe('memoryHeadroom', () => {
  it("reads cgroup v2's limit less its use", () => {
    const files: Record<string, string> = { '/sys/fs/cgroup/memory.max': `${4 * GiB}\n`, '/sys/fs/cgroup/memory.current': `${3 * GiB}\n` };
    expect(memoryHeadroom((f) => files[f])).toBe(GiB);
  });

  it('falls back to MemAvailable without a limit (v2 "max", or v1 at its no-limit value)', () => {
    const meminfo = 'MemTotal:       24000000 kB\nMemAvailable:    2097152 kB\n';
    expect(memoryHeadroom((f) => ({ '/sys/fs/cgroup/memory.max': 'max\n', '/sys/fs/cgroup/memory.current': '1000\n', '/proc/meminfo': meminfo })[f])).toBe(
      2 * GiB,
    );
    const v1 = {
      '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n',
      '/sys/fs/cgroup/memory/memory.usage_in_bytes': '5\n',
      '/proc/meminfo': meminfo,
    };
    expect(memoryHeadroom((f) => (v1 as Record<string, string>)[f])).toBe(2 * GiB);
  });

  it("reads cgroup v1's limit less its usage, never below 0", () => {
    const v1 = { '/sys/fs/cgroup/memory/memory.limit_in_bytes': `${2 * GiB}`, '/sys/fs/cgroup/memory/memory.usage_in_bytes': `${3 * GiB}` };
    expect(memoryHeadroom((f) => (v1 as Record<string, string>)[f])).toBe(0);
  });

  it('is undefined when nothing can be read', () => {
    expect(memoryHeadroom(() => undefined)).toBeUndefined();
  });
});

describe('spillRoomFor', () => {
  it('is 0 for a work dir that cannot be read', async () => {
    expect(await spillRoomFor('/nonexistent/spotsnap-work', 4 * GiB)).toEqual({ limitBytes: 0, inMemory: false });
  });

  it('keeps the setting on a disk with room, and at most half its free space', async () => {
    // The checkout's own directory is on the machine's disk (overlay or ext4), not tmpfs.
    const dir = await mkdtemp(path.join(process.cwd(), 'node_modules', '.spill-headroom-'));
    try {
      const free = await statfs(dir);
      const half = Math.floor((free.bavail * free.bsize) / 2);
      expect(await spillRoomFor(dir, 1 << 20)).toEqual({ limitBytes: 1 << 20, inMemory: false });
      const unbounded = (await spillRoomFor(dir, Number.MAX_SAFE_INTEGER)).limitBytes;
      // Other processes write to the same disk meanwhile: within a gigabyte of half of what was free.
      expect(Math.abs(unbounded - half)).toBeLessThan(GiB);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('holds a tmpfs work dir to half the memory headroom, at most the setting', async () => {
    const shm = await mkdtemp(path.join('/dev/shm', 'spill-headroom-')).catch(() => undefined);
    if (!shm) return expect.fail('/dev/shm is needed for this test');
    try {
      // Other tests write into /dev/shm meanwhile: the limit is checked against the most it was free, before or after.
      const free = async () => {
        const fs = await statfs(shm);
        return fs.bavail * fs.bsize;
      };
      const freeBefore = await free();
      const room = await spillRoomFor(shm, 1024 * GiB);
      const freeAfter = await free();
      expect(room.inMemory).toBe(true);
      const limit = room.limitBytes;
      expect(limit).toBeGreaterThan(0);
      expect(limit).toBeLessThan(os.totalmem());
      expect(await spillRoomFor(shm, 1)).toEqual({ limitBytes: 1, inMemory: true });
      expect(limit).toBeLessThanOrEqual(Math.floor(Math.max(freeBefore, freeAfter) / 2));
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });
});
