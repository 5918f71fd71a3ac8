// SPOTSNAP_PATHS: the directories whose files are the task's state, resolved on disk as far as they exist.
import { realpathSync } from 'node:fs';
import path from 'node:path';
import type { ReportProblem } from './config-types.ts';
import { ENV_VARS } from './env-vars.ts';

/**
 * The real path of p's longest existing prefix (every symlink in it resolved), with the rest of p kept as given:
 * `/scratch/run` with `/scratch -> /mnt/nvme/scratch` and no `run` yet is `/mnt/nvme/scratch/run`.
 */
export function resolveExistingPrefix(p: string): string {
  const absolute = path.resolve(p);
  const rest: string[] = [];
  for (let prefix = absolute; ; prefix = path.dirname(prefix)) {
    try {
      return path.join(realpathSync.native(prefix), ...rest);
    } catch {
      if (prefix === path.dirname(prefix)) return absolute;
      rest.unshift(path.basename(prefix));
    }
  }
}

/** The state paths from SPOTSNAP_PATHS, else the working directory `cwd`; each resolved, duplicates dropped. */
export function readPaths(env: NodeJS.ProcessEnv, cwd: string, bad: ReportProblem): string[] {
  const spec = ENV_VARS.paths;
  const raw = env[spec.name];
  if (raw === undefined || raw.trim() === '') {
    if (cwd === '/') {
      bad(spec.name, `set, because the working directory is "/" and the whole filesystem cannot be snapshotted (e.g. ${spec.name}=/work)`);
      return [];
    }
    return [resolveExistingPrefix(cwd)];
  }
  const listed = spec.parse(raw) ?? [];
  if (listed.length === 0 || listed.some((p) => !path.isAbsolute(p) || path.resolve(p) === '/')) {
    bad(spec.name, spec.expected);
    return [];
  }
  const resolved = listed.map(resolveExistingPrefix);
  const toRoot = listed.find((_p, i) => resolved[i] === '/');
  if (toRoot !== undefined) {
    bad(spec.name, `directories other than "/": ${toRoot} resolves to "/" through a symlink`);
    return [];
  }
  return [...new Set(resolved)];
}
