// How many ranged reads a restore keeps in flight, from SPOTSNAP_PACKS_IN_FLIGHT and the size of the images.
import { describe, expect, it } from 'vitest';
import { readsInFlight } from './chunk-downloader.ts';

const GiB = 1024 ** 3;

describe('readsInFlight', () => {
  it('takes a number as it is set, whatever the size', () => {
    expect(readsInFlight(1, 64 * GiB)).toBe(1);
    expect(readsInFlight(32, 0)).toBe(32);
  });

  it('gives auto four for a small task, one per GiB of images above that, and sixteen at most', () => {
    expect(readsInFlight('auto', 0)).toBe(4);
    expect(readsInFlight('auto', 1 * GiB)).toBe(4);
    expect(readsInFlight('auto', 6.5 * GiB)).toBe(6);
    expect(readsInFlight('auto', 16 * GiB)).toBe(16);
    expect(readsInFlight('auto', 64 * GiB)).toBe(16);
  });
});
