// Creates a named FIFO: Node has no mkfifo(3), so the bundle's `mkfifo` makes it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findExecutable } from '../task/find-executable.ts';

const run = promisify(execFile);

/** Creates a FIFO at `target` (which must not exist) with mode 0600; rejects with what mkfifo said. */
export async function makeFifo(target: string): Promise<void> {
  const mkfifo = findExecutable('mkfifo') ?? 'mkfifo';
  try {
    await run(mkfifo, ['-m', '600', '--', target]);
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`could not create the named FIFO ${target}: ${stderr || (error as Error).message}`);
  }
}
