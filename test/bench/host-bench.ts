// `node test/bench/host-bench.ts [--size MIB[,MIB...]] [--kind random|text] [--bundle DIR]`: the benchmark on a host with neither Docker nor Node, using the task image's bundle (CRIU, the agent, its Node), as root.
//
// For a many-core machine where no Docker engine runs: test/bench/device-bench.sh packs the bundle here and
// runs this there with the bundle's own Node. The figures are those of `npm run bench` (bench-results.ts),
// measured the same way (bench-case.ts), against the fast S3 stand-in on tmpfs.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startFastS3 } from '../../localstack/fast-s3-server.ts';
import { ImdsSimulator } from '../../localstack/imds-simulator.ts';
import { TEST_AWS_ENV } from '../support/test-aws-env.ts';
import { ratios, resultsTable, type CaseResult, type MemoryKind } from './bench-results.ts';
import { experimentEnv } from './experiment-env.ts';
import { hostBenchCase } from './host-bench-case.ts';

const USAGE = 'usage: node test/bench/host-bench.ts [--size MIB[,MIB...]] [--kind random|text] [--bundle DIR (default /opt/spotsnap)] [--python PATH]';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function fail(message: string): never {
  console.error(`host-bench: ${message}\n${USAGE}`);
  process.exit(64);
}

let args: ReturnType<
  typeof parseArgs<{ options: { size: { type: 'string' }; kind: { type: 'string' }; bundle: { type: 'string' }; python: { type: 'string' } } }>
>;
try {
  args = parseArgs({
    options: { size: { type: 'string' }, kind: { type: 'string' }, bundle: { type: 'string' }, python: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
const sizes = (args.values.size ?? '256,1024,2048').split(',').map(Number);
if (sizes.some((s) => !Number.isInteger(s) || s < 16 || s > 262144))
  fail(`--size ${JSON.stringify(args.values.size)} is not a list of whole numbers of MiB from 16 to 262144`);
const kinds: MemoryKind[] = args.values.kind === undefined ? ['random', 'text'] : [args.values.kind as MemoryKind];
if (!kinds.every((k) => k === 'random' || k === 'text')) fail(`--kind ${JSON.stringify(args.values.kind)} is neither random nor text`);
// The bundle's wrappers name /opt/spotsnap, so that is where it has to be (docker/make-bundle.sh).
const bundle = path.resolve(args.values.bundle ?? '/opt/spotsnap');
if (bundle !== '/opt/spotsnap') fail(`--bundle ${bundle}: the bundle's wrappers run /opt/spotsnap/..., so unpack it there`);
for (const tool of ['bin/spotsnap', 'bin/criu', 'bin/node', 'bin/unshare', 'bin/setsid', 'samples/bench-task.py']) {
  if (!existsSync(path.join(bundle, tool)))
    fail(`${path.join(bundle, tool)} is missing: unpack the task image's /opt/spotsnap there (test/bench/device-bench.sh)`);
}
if (process.getuid?.() !== 0) fail('run it as root: CRIU dumps and restores the task');
const python = args.values.python ?? whichPython();
try {
  experimentEnv();
} catch (error) {
  fail((error as Error).message);
}

function whichPython(): string {
  try {
    // The interpreter itself, not a launcher in front of it (pyenv's shims are shell scripts).
    return execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
  } catch {
    fail('no python3 on PATH to run the bench task (docker/sample-tasks/bench-task.py); name one with --python');
  }
}

// Each case holds, at its fullest, the task and its images (the plain dump, the plain upload's objects beside
// its file, or the task beside its snapshot): twice its memory, all of it in memory.
const availableMiB = Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) / 1024;
for (const mib of sizes) {
  const need = 2 * mib + 2048;
  if (need > availableMiB) {
    fail(
      `a ${mib} MiB task needs about ${need} MiB of memory (itself and its images, the stand-in's objects on tmpfs), and this machine has ${availableMiB.toFixed(0)} MiB available: choose a --size of at most ${Math.floor((availableMiB - 2048) / 2)}`,
    );
  }
}

Object.assign(process.env, TEST_AWS_ENV);
// A tmpfs of its own, outside the directories where the agent looks for a task's scratch files (/tmp, /var/tmp,
// /dev/shm: agent/task/outside-files.ts): there, the agent would take the stand-in's objects along with the task.
const scratchDir = '/run/spotsnap-host-bench';
await mkdir(scratchDir, { recursive: true });
execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.max(...sizes) * 2 + 1024}m`, 'spotsnap-host-bench', scratchDir]);
const s3Dir = path.join(scratchDir, 's3');
const cores = os.availableParallelism();
// Run under the bundle's Node, this process's own binary needs the bundle's loader: its processes start through the wrapper.
const execPath = process.execPath.startsWith(`${bundle}/`) ? path.join(bundle, 'bin/node') : undefined;
const s3 = await startFastS3({ dir: s3Dir, workers: cores, execPath });
const imds = new ImdsSimulator();
await imds.start();
const resultsDir = path.join(root, 'results');
const logDir = path.join(resultsDir, 'host-bench-logs');
await mkdir(logDir, { recursive: true });
try {
  const results: CaseResult[] = [];
  for (const mib of sizes) {
    for (const kind of kinds) {
      results.push(await hostBenchCase(mib, kind, { bundle, python, s3Endpoint: s3.endpoint, s3Dir, imds, scratchDir, logDir }));
    }
  }
  const machine = {
    cpus: cores,
    memoryMiB: Math.round(os.totalmem() / 1048576),
    kernel: os.release(),
    date: new Date().toISOString(),
    s3: 'fast',
    where: 'host (bundle, no containers)',
  };
  const text = resultsTable(results);
  console.log(`\n${JSON.stringify(machine)}\n\n${text}\n`);
  await writeFile(
    path.join(resultsDir, 'host-bench.json'),
    `${JSON.stringify({ machine, results: results.map((r) => ({ ...r, ratios: ratios(r) })) }, null, 2)}\n`,
  );
  await writeFile(path.join(resultsDir, 'host-bench.md'), `${JSON.stringify(machine)}\n\n${text}\n`);
  console.log("written: results/host-bench.json, results/host-bench.md, and each attempt's output in results/host-bench-logs/");
} finally {
  await imds.stop();
  await s3.stop();
  execFileSync('umount', [scratchDir]);
  await rm(scratchDir, { recursive: true, force: true });
}
