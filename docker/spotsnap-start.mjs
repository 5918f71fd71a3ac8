// Loads the bundled agent with Node's compile cache, made in /opt/spotsnap/cache when the image was built.
//
// The bundle is the AWS SDK and the agent in one module, and compiling it was about a fifth of the agent's
// start (30 of 150 ms measured in the task image); every restore and every task pays that start. The cache
// is keyed by Node's version and the bundle's content, so a stale or missing one is only not used, and one
// that cannot be written (a read-only /opt) changes nothing.
import module from 'node:module';

module.enableCompileCache?.(new URL('../cache', import.meta.url).pathname);
await import('./spotsnap.mjs');
