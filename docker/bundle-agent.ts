// Bundles the agent into one ESM file (dist/spotsnap.mjs) for the task image's /opt/spotsnap.
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

await build({
  entryPoints: [path.join(root, 'agent/cli/entry.ts')],
  outfile: path.join(root, 'dist/spotsnap.mjs'),
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
console.log('bundled dist/spotsnap.mjs');
