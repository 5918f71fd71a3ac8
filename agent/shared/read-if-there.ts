// Reads a small system file (/proc, /sys/fs/cgroup) that may not exist here: its text, or undefined.
import { readFileSync } from 'node:fs';

/** The file's text, or undefined when it cannot be read (absent on this kernel, cgroup version or machine). */
export function readIfThere(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
