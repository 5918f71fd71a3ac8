// Loads a native binding the agent uses for speed: from beside the bundle in the task image, else from the checkout's node_modules.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The bindings, by the npm package that ships them and the file stem of their platform's `.node` file. */
export const NATIVE_BINDINGS = {
  blake3: { package: '@napi-rs/blake-hash', file: 'blake' },
  crc32: { package: '@node-rs/crc32', file: 'crc32' },
} as const;

export type NativeBindingName = keyof typeof NATIVE_BINDINGS;

/** The binding, or why it could not be loaded (the agent then does the same work in Node's own code). */
export type LoadedBinding<T> = { binding: T; from: string } | { binding: undefined; error: string };

/**
 * The file name of a binding built for this process: the task image's runtime is always glibc's
 * (docker/make-bundle.sh), so the bundle carries the `-gnu` build of its architecture.
 */
export function bundledBindingFile(name: NativeBindingName, platform = process.platform, arch = process.arch): string {
  return `${NATIVE_BINDINGS[name].file}.${platform}-${arch}-gnu.node`;
}

export function loadNativeBinding<T>(name: NativeBindingName, moduleUrl: string = import.meta.url): LoadedBinding<T> {
  const require = createRequire(moduleUrl);
  // In the image, the bundle's own directory holds native/<file> (docker/bundle-agent.ts copies it there).
  const bundled = fileURLToPath(new URL(`./native/${bundledBindingFile(name)}`, moduleUrl));
  const from = existsSync(bundled) ? bundled : NATIVE_BINDINGS[name].package;
  try {
    return { binding: require(from) as T, from };
  } catch (error) {
    return { binding: undefined, error: `${from}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` };
  }
}
