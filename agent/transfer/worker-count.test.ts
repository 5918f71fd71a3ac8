// How many chunk workers run: the cgroup CPU quota (v2 or v1), rounded up, lowered by the CPU affinity, capped by the setting.
import { describe, expect, it } from 'vitest';
import { quotaCores, usableCores, workerCount } from './worker-count.ts';

const V2 = '/sys/fs/cgroup/cpu.max';
const V1_QUOTA = '/sys/fs/cgroup/cpu/cpu.cfs_quota_us';
const V1_PERIOD = '/sys/fs/cgroup/cpu/cpu.cfs_period_us';

/** A reader of these files only: any other path read is a mistake of the code under test. */
function files(contents: Record<string, string>): (file: string) => string | undefined {
  return (file) => {
    if (![V2, V1_QUOTA, V1_PERIOD].includes(file)) throw new Error(`read an unexpected file ${file}`);
    return contents[file];
  };
}

describe('quotaCores', () => {
  it('reads no quota from cgroup v2 "max PERIOD"', () => {
    expect(quotaCores(files({ [V2]: 'max 100000\n' }))).toBeUndefined();
  });

  it('rounds a cgroup v2 quota up to whole cores', () => {
    expect(quotaCores(files({ [V2]: '150000 100000\n' }))).toBe(2);
    expect(quotaCores(files({ [V2]: '200000 100000\n' }))).toBe(2);
    expect(quotaCores(files({ [V2]: '200001 100000' }))).toBe(3);
    expect(quotaCores(files({ [V2]: '400000 50000' }))).toBe(8);
  });

  it('gives at least one core for a quota under one', () => {
    expect(quotaCores(files({ [V2]: '50000 100000\n' }))).toBe(1);
    expect(quotaCores(files({ [V2]: '1000 100000' }))).toBe(1);
  });

  it('reads cgroup v1 quota and period when there is no cpu.max', () => {
    expect(quotaCores(files({ [V1_QUOTA]: '300000\n', [V1_PERIOD]: '100000\n' }))).toBe(3);
    expect(quotaCores(files({ [V1_QUOTA]: '250000\n', [V1_PERIOD]: '100000\n' }))).toBe(3);
    expect(quotaCores(files({ [V1_QUOTA]: '50000\n', [V1_PERIOD]: '100000\n' }))).toBe(1);
  });

  it('reads no quota from cgroup v1 -1, and none without any cgroup file', () => {
    expect(quotaCores(files({ [V1_QUOTA]: '-1\n', [V1_PERIOD]: '100000\n' }))).toBeUndefined();
    expect(quotaCores(files({}))).toBeUndefined();
  });

  it('reads no quota from garbage', () => {
    expect(quotaCores(files({ [V2]: 'lots 100000' }))).toBeUndefined();
    expect(quotaCores(files({ [V2]: '150000 often' }))).toBeUndefined();
    expect(quotaCores(files({ [V2]: '0 100000' }))).toBeUndefined();
    expect(quotaCores(files({ [V2]: '150000 0' }))).toBeUndefined();
    expect(quotaCores(files({ [V2]: '-150000 100000' }))).toBeUndefined();
    expect(quotaCores(files({ [V2]: 'Infinity 100000' }))).toBeUndefined();
    expect(quotaCores(files({ [V2]: '150000 100000 7' }))).toBeUndefined();
    expect(quotaCores(files({ [V2]: '' }))).toBeUndefined();
    expect(quotaCores(files({ [V1_QUOTA]: 'plenty', [V1_PERIOD]: '100000' }))).toBeUndefined();
    expect(quotaCores(files({ [V1_QUOTA]: '300000', [V1_PERIOD]: 'never' }))).toBeUndefined();
    expect(quotaCores(files({ [V1_QUOTA]: '300000' }))).toBeUndefined();
  });
});

describe('usableCores', () => {
  it('is the affinity without a quota', () => {
    expect(usableCores(files({ [V2]: 'max 100000' }), 12)).toBe(12);
    expect(usableCores(files({}), 3)).toBe(3);
  });

  it('is the quota when it is lower than the affinity', () => {
    expect(usableCores(files({ [V2]: '150000 100000' }), 16)).toBe(2);
    expect(usableCores(files({ [V1_QUOTA]: '100000', [V1_PERIOD]: '100000' }), 16)).toBe(1);
  });

  it('is the affinity when it is lower than the quota', () => {
    expect(usableCores(files({ [V2]: '800000 100000' }), 2)).toBe(2);
    expect(usableCores(files({ [V1_QUOTA]: '800000', [V1_PERIOD]: '100000' }), 3)).toBe(3);
  });

  it('is at least one', () => {
    expect(usableCores(files({}), 0)).toBe(1);
  });

  it('reads this machine without throwing, and gives a whole number of cores', () => {
    const cores = usableCores();
    expect(Number.isInteger(cores)).toBe(true);
    expect(cores).toBeGreaterThanOrEqual(1);
  });
});

describe('workerCount', () => {
  it("is one worker per usable core but the main thread's for auto, and at least one", () => {
    expect(workerCount('auto', 16)).toBe(15);
    expect(workerCount('auto', 6)).toBe(5);
    expect(workerCount('auto', 2)).toBe(1);
    expect(workerCount('auto', 1)).toBe(1);
  });

  it('caps the usable cores at a number, and never goes under one', () => {
    expect(workerCount(4, 6)).toBe(4);
    expect(workerCount(6, 6)).toBe(6);
    expect(workerCount(16, 6)).toBe(6);
    expect(workerCount(256, 2)).toBe(2);
    expect(workerCount(1, 64)).toBe(1);
    expect(workerCount(0, 6)).toBe(1);
  });
});
