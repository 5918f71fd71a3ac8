// Creates the special files a task's archive carries: named FIFOs, and the character devices anyone may have.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findExecutable } from '../task/find-executable.ts';

const run = promisify(execFile);

/**
 * The character devices an archive may recreate, by major and minor number: the ones every container has and
 * that grant nothing (`/dev/null`, `zero`, `full`, `random`, `urandom`, `tty`, `ptmx`). Any other device node (a
 * disk, `/dev/mem`, a GPU) is refused: a snapshot must never be able to plant access to the host's hardware.
 */
export const HARMLESS_CHAR_DEVICES: ReadonlyMap<string, string> = new Map([
  ['1:3', 'null'],
  ['1:5', 'zero'],
  ['1:7', 'full'],
  ['1:8', 'random'],
  ['1:9', 'urandom'],
  ['5:0', 'tty'],
  ['5:2', 'ptmx'],
]);

/** The Linux major and minor numbers of a device number (`st_rdev`). */
export function deviceNumbers(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return { major, minor };
}

/** Whether an archive may recreate the character device `major:minor`. */
export function isHarmlessCharDevice(major: number, minor: number): boolean {
  return HARMLESS_CHAR_DEVICES.has(`${major}:${minor}`);
}

/** Runs one of the bundle's coreutils, naming what could not be created when it fails. */
async function make(tool: string, args: string[], what: string): Promise<void> {
  try {
    await run(findExecutable(tool) ?? tool, args);
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(`could not create ${what}: ${stderr || (error as Error).message}`);
  }
}

/** Creates a FIFO at `target` (which must not exist) with mode 0600; rejects with what mkfifo said. */
export async function makeFifo(target: string): Promise<void> {
  await make('mkfifo', ['-m', '600', '--', target], `the named FIFO ${target}`);
}

/** Creates the harmless character device `major:minor` at `target` (which must not exist) with mode 0600. */
export async function makeCharDevice(target: string, major: number, minor: number): Promise<void> {
  if (!isHarmlessCharDevice(major, minor)) throw new Error(`refusing to create the character device ${major}:${minor} at ${target}`);
  await make('mknod', ['-m', '600', '--', target, 'c', String(major), String(minor)], `the character device ${target}`);
}
