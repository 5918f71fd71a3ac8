// Awaits every promise of a group before failing, so no sibling's later rejection goes unobserved.

/**
 * Like Promise.all, but waits for all to settle. On failure it calls `onFirstFailure` at once (to cancel
 * the others) and finally throws the first error that is not a mere abort caused by that cancellation.
 */
export async function settleAll<T>(promises: ReadonlyArray<Promise<T>>, onFirstFailure?: (error: unknown) => void): Promise<T[]> {
  let failed = false;
  const watched = promises.map((p) =>
    p.catch((error: unknown) => {
      if (!failed) {
        failed = true;
        onFirstFailure?.(error);
      }
      throw error;
    }),
  );
  const results = await Promise.allSettled(watched);
  const errors = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (errors.length > 0) throw errors.find((e) => !isAbort(e)) ?? errors[0];
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || /aborted|destroyed/i.test(error.message));
}
