// What an S3 call that should fail ended in, for tests to match: S3's error code, the HTTP status and the message.
import { expect } from 'vitest';

/** The S3 error an SDK call ends in: its name (S3's code), HTTP status and message; a call that succeeds fails the test. */
export async function s3Error(call: Promise<unknown>): Promise<{ name: string; status: number | undefined; message: string }> {
  const error = (await call.then(
    () => expect.unreachable('the call succeeded'),
    (e: unknown) => e,
  )) as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
  return { name: error.name, status: error.$metadata?.httpStatusCode, message: error.message };
}
