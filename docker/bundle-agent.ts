// Bundles the agent into ESM files for the task image's /opt/spotsnap: dist/spotsnap.mjs, and dist/chunk-worker.mjs for its worker threads.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
console.log(`bundled ${bundles.map((b) => b.out).join(', ')}`);
