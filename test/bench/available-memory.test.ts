// The benchmark's free memory is MemAvailable in bytes: whole KiB, more than none, no more than the machine has.
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { availableMemoryBytes } from './available-memory.ts';

describe('availableMemoryBytes', () => {
  it('reads MemAvailable as bytes', () => {
    const bytes = availableMemoryBytes();
    expect(Number.isSafeInteger(bytes)).toBe(true);
    expect(bytes % 1024).toBe(0);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThanOrEqual(os.totalmem());
  });
});
