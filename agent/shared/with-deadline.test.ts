import { describe, expect, it } from 'vitest';
import { DeadlineError, withDeadline } from './with-deadline.ts';

describe('withDeadline', () => {
  it("passes the work's own result and error through", async () => {
    await expect(withDeadline(Promise.resolve(7), 1000, 'the lookup')).resolves.toBe(7);
    await expect(withDeadline(Promise.reject(new Error('refused')), 1000, 'the lookup')).rejects.toThrow('refused');
  });

  it('rejects, naming the work, when it never settles', async () => {
    const never = new Promise<number>(() => undefined);
    const result = withDeadline(never, 20, 'the snapshot lookup');
    await expect(result).rejects.toBeInstanceOf(DeadlineError);
    await expect(result).rejects.toThrow('the snapshot lookup did not finish within 0.02 s');
  });
});
