// Finds a program on the agent's own PATH, where the bundle's tools come first.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** The absolute path of `name` on `searchPath`, or undefined. */
export function findExecutable(name: string, searchPath: string | undefined = process.env.PATH): string | undefined {
  for (const dir of (searchPath ?? '').split(':')) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
