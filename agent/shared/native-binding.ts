// Loads a native binding the agent uses for speed, on first use: the bundle's own copy in the task image, the checkout's node_modules otherwise, and only once it computes a known value.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The bindings, by the npm package that ships them and the file stem of their platform's `.node` file. */
export const NATIVE_BINDINGS = {
  blake3: { package: '@napi-rs/blake-hash', file: 'blake' },
  crc32: { package: '@node-rs/crc32', file: 'crc32' },
} as const;

export type NativeBindingName = keyof typeof NATIVE_BINDINGS;

/** The binding, or why it cannot be used (the agent then does the same work in Node's own code). */
export type LoadedBinding<T> = { binding: T; from: string } | { binding: undefined; error: string };

/**
 * The file name of a binding built for this process: the task image's runtime is always glibc's
 * (docker/make-bundle.sh), so the bundle carries the `-gnu` build of its architecture.
 */
export function bundledBindingFile(name: NativeBindingName, platform = process.platform, arch = process.arch): string {
  return `${NATIVE_BINDINGS[name].file}.${platform}-${arch}-gnu.node`;
}

/**
 * Loads binding `name` for the module at `moduleUrl`, and runs `check` on it, which throws unless it computes
 * a known value. A bundle (a `.mjs` module, as in the task image) loads only the copy in `native/` beside it:
 * never a package found elsewhere on the task's module paths, which spotsnap did not ship. A module run from
 * the source tree loads the package from node_modules. Nothing here throws.
 */
export function loadNativeBinding<T>(name: NativeBindingName, check: (binding: T) => void, moduleUrl: string = import.meta.url): LoadedBinding<T> {
  const fromSource = moduleUrl.endsWith('.ts');
  let from: string = NATIVE_BINDINGS[name].package;
  try {
    if (!fromSource) {
      from = fileURLToPath(new URL(`./native/${bundledBindingFile(name)}`, moduleUrl));
      if (!existsSync(from)) return { binding: undefined, error: `${from} is not in the bundle` };
    }
    const binding = createRequire(moduleUrl)(from) as T;
    check(binding);
    return { binding, from };
  } catch (error) {
    return { binding: undefined, error: `${from}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` };
  }
}

/**
 * `loadNativeBinding` on the first call, and its result on every later one: a process that never hashes a
 * chunk (spotsnap off, a task run transparently) never spends its start loading one.
 */
export function lazyNativeBinding<T>(name: NativeBindingName, check: (binding: T) => void): () => LoadedBinding<T> {
  let loaded: LoadedBinding<T> | undefined;
  return () => {
    loaded ??= loadNativeBinding(name, check);
    return loaded;
  };
}
