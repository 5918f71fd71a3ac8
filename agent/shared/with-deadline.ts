// Bounds a wait: the work's own result, or an error naming what took too long once the time is up.

/** The work did not settle within its time. */
export class DeadlineError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not finish within ${ms / 1000} s`);
    this.name = 'DeadlineError';
  }
}

/** Resolves or rejects as `work` does, or rejects with a DeadlineError after `ms` (the work itself is not stopped). */
export async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(what, ms)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
