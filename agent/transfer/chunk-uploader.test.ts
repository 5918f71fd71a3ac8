import { describe, expect, it } from 'vitest';
import { autoPacksInFlight } from './chunk-uploader.ts';

const GiB = 1024 ** 3;

describe('autoPacksInFlight', () => {
  it('keeps two packs in flight up to a 3 GiB task, then one per GiB, at most 16', () => {
    expect(autoPacksInFlight(0)).toBe(2);
    expect(autoPacksInFlight(256 << 20)).toBe(2);
    expect(autoPacksInFlight(3 * GiB - 1)).toBe(2);
    expect(autoPacksInFlight(3 * GiB)).toBe(3);
    expect(autoPacksInFlight(9.5 * GiB)).toBe(9);
    expect(autoPacksInFlight(64 * GiB)).toBe(16);
  });
});
