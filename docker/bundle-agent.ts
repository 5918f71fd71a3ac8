// Bundles the agent into ESM files for the task image's /opt/spotsnap: dist/spotsnap.mjs, dist/chunk-worker.mjs for its worker threads, and dist/native/ for their native bindings.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundledBindingFile, NATIVE_BINDINGS, type NativeBindingName } from '../agent/shared/native-binding.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Each bundle and its entry: the worker threads load theirs beside the main one (agent/transfer/chunk-workers.ts). */
const bundles = [
  { entry: 'agent/cli/entry.ts', out: 'dist/spotsnap.mjs' },
  { entry: 'agent/transfer/chunk-worker.ts', out: 'dist/chunk-worker.mjs' },
];

for (const { entry, out } of bundles)
  await build({
    entryPoints: [path.join(root, entry)],
    outfile: path.join(root, out),
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    // The ESM builds of the AWS SDK, which esbuild can tree-shake (their CommonJS builds carry every command).
    mainFields: ['module', 'main'],
    // Minified, with names kept for stack traces: less code for V8 to hold in the agent's memory.
    minify: true,
    keepNames: true,
    sourcemap: false,
    legalComments: 'none',
    // Some bundled CommonJS modules call require() for Node built-ins.
    banner: { js: "import { createRequire as spotsnapCreateRequire } from 'node:module'; const require = spotsnapCreateRequire(import.meta.url);" },
    logLevel: 'warning',
  });

// The bindings of this machine's architecture, glibc builds (the image's runtime is glibc's, make-bundle.sh),
// loaded at run time from native/ beside the bundle (agent/shared/native-binding.ts). Where npm installed none
// for this architecture the bundle goes without it: its agent names chunks by SHA-256 and says so at doctor.
const native = path.join(root, 'dist', 'native');
rmSync(native, { recursive: true, force: true });
mkdirSync(native, { recursive: true });
const require = createRequire(import.meta.url);
for (const name of Object.keys(NATIVE_BINDINGS) as NativeBindingName[]) {
  const platformPackage = `${NATIVE_BINDINGS[name].package}-${process.platform}-${process.arch}-gnu`;
  const file = bundledBindingFile(name);
  let source: string;
  try {
    source = path.join(path.dirname(require.resolve(`${platformPackage}/package.json`)), file);
  } catch {
    console.warn(`bundle-agent: ${platformPackage} is not installed: the image goes without its ${name} binding`);
    continue;
  }
  copyFileSync(source, path.join(native, file));
}
console.log(`bundled ${bundles.map((b) => b.out).join(', ')} and dist/native/`);
