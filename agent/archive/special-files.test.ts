import { lstat, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { deviceNumbers, isHarmlessCharDevice, makeCharDevice, makeFifo } from './special-files.ts';

describe('special files', () => {
  it('splits a device number as Linux does, small and large', () => {
    expect(deviceNumbers((1 << 8) | 3)).toEqual({ major: 1, minor: 3 });
    // major 300, minor 70000: the high bits of each live above bit 20 and bit 32.
    const rdev = Number(BigInt(70000 & 0xff) | (BigInt(300 & 0xfff) << 8n) | (BigInt(70000 & ~0xff) << 12n) | (BigInt(300 & ~0xfff) << 32n));
    expect(deviceNumbers(rdev)).toEqual({ major: 300, minor: 70000 });
  });

  it('allows only the devices that grant nothing', () => {
    expect(isHarmlessCharDevice(1, 3)).toBe(true);
    expect(isHarmlessCharDevice(1, 1)).toBe(false);
    expect(isHarmlessCharDevice(195, 0)).toBe(false);
  });

  it('makes a FIFO and a null device, and refuses /dev/mem by name', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'special-'));
    try {
      await makeFifo(path.join(dir, 'pipe'));
      expect((await lstat(path.join(dir, 'pipe'))).isFIFO()).toBe(true);
      await makeCharDevice(path.join(dir, 'null'), 1, 3);
      expect(deviceNumbers((await lstat(path.join(dir, 'null'))).rdev)).toEqual({ major: 1, minor: 3 });
      await expect(makeCharDevice(path.join(dir, 'mem'), 1, 1)).rejects.toThrow(`refusing to create the character device 1:1 at ${path.join(dir, 'mem')}`);
      await expect(makeFifo(path.join(dir, 'pipe'))).rejects.toThrow(`could not create the named FIFO ${path.join(dir, 'pipe')}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
