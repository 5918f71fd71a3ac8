import { describe, expect, it } from 'vitest';
import { settleAll } from './settle-all.ts';

describe('settleAll', () => {
  it('returns every value in order', async () => {
    expect(await settleAll([Promise.resolve(1), Promise.resolve(2)])).toEqual([1, 2]);
  });

  it('cancels the others on the first failure, waits for them, and throws the real error', async () => {
    const controller = new AbortController();
    const slow = new Promise<number>((_, reject) =>
      controller.signal.addEventListener('abort', () => {
        const e = new Error('The operation was aborted');
        e.name = 'AbortError';
        setTimeout(() => reject(e), 10);
      }),
    );
    const failing = Promise.reject(new Error('S3 said 500'));
    await expect(settleAll([slow, failing], () => controller.abort())).rejects.toThrow('S3 said 500');
  });
});
