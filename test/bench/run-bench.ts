// `npm run bench [-- --size MIB] [--kind random|text] [--s3 fast|emulator]`: checkpoint and restore against the plain limits, measured in one run.
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ImdsSimulator } from '../../localstack/imds-simulator.ts';
import { startFastS3 } from '../../localstack/fast-s3-server.ts';
import { startS3Emulator } from '../support/s3-emulator.ts';
import { availableMemoryBytes } from './available-memory.ts';
import { renderChart } from './bench-chart.ts';
import { benchCase } from './bench-case.ts';
import { experimentEnv } from './experiment-env.ts';
import { warmGuestMemory } from './bench-containers.ts';
import { ratios, resultsTable, type CaseResult, type MemoryKind } from './bench-results.ts';

process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const resultsDir = path.join(root, 'results');
const USAGE = 'usage: npm run bench [-- --size MIB] [--kind random|text] [--s3 fast|emulator]';

function fail(message: string): never {
  console.error(`bench: ${message}\n${USAGE}`);
  process.exit(64);
}

let args: ReturnType<typeof parseArgs<{ options: { size: { type: 'string' }; kind: { type: 'string' }; s3: { type: 'string' } } }>>;
try {
  args = parseArgs({ options: { size: { type: 'string' }, kind: { type: 'string' }, s3: { type: 'string' } }, strict: true, allowPositionals: false });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
const SIZES_MIB = args.values.size === undefined ? [256, 1024, 2048] : [Number(args.values.size)];
if (SIZES_MIB.some((s) => !Number.isInteger(s) || s < 16 || s > 16384))
  fail(`--size ${JSON.stringify(args.values.size)} is not a whole number of MiB from 16 to 16384`);
const KINDS: MemoryKind[] = args.values.kind === undefined ? ['random', 'text'] : [args.values.kind as MemoryKind];
if (!KINDS.every((k) => k === 'random' || k === 'text')) fail(`--kind ${JSON.stringify(args.values.kind)} is neither random nor text`);
const server = args.values.s3 ?? 'fast';
if (server !== 'fast' && server !== 'emulator') fail(`--s3 ${JSON.stringify(server)} is neither fast nor emulator`);
try {
  experimentEnv();
} catch (error) {
  fail((error as Error).message);
}
// A case holds at most its task's memory twice over (the images beside the stand-in's objects, or a restored
// task beside its snapshot) and a tenth more for the second checkpoint, all of it in memory (tmpfs).
const neededMiB = (mib: number) => Math.ceil(mib * 2.2) + 2048;
const availableMiB = Math.floor(availableMemoryBytes() / 1048576);
for (const mib of SIZES_MIB)
  if (neededMiB(mib) > availableMiB)
    fail(
      `--size ${mib} needs about ${neededMiB(mib)} MiB of free memory and this machine has ${availableMiB} MiB; ` +
        `the largest size that fits is ${Math.max(0, Math.floor((availableMiB - 2048) / 2.2))} MiB`,
    );

const docker = await execa('docker', ['info', '--format', '{{.ServerVersion}}'], { reject: false });
if (docker.exitCode !== 0) {
  console.error('bench: no Docker engine answers ("docker info" failed). Start one (see .ci/run) and run again.');
  process.exit(1);
}
await mkdir(resultsDir, { recursive: true });
await execa(path.join(root, 'docker/build-images.sh'), { stdio: 'inherit' });
await warmGuestMemory();
// The fast stand-in keeps objects as files on tmpfs, served by one process per core (localstack/fast-s3-server.ts):
// the server is then not what limits the figures, as moto (one core, objects in memory) would be.
const scratchDir = await mkdtemp(path.join('/dev/shm', 'spotsnap-bench-'));
const cores = os.availableParallelism();
const s3 =
  server === 'fast'
    ? await startFastS3({ dir: path.join(scratchDir, 's3'), workers: cores })
    : await startS3Emulator().then((e) => ({ endpoint: e.endpoint, stop: () => e.container.stop().then(() => undefined) }));
const imds = new ImdsSimulator();
await imds.start();
try {
  const results: CaseResult[] = [];
  for (const mib of SIZES_MIB) for (const kind of KINDS) results.push(await benchCase(mib, kind, { s3Endpoint: s3.endpoint, imds, scratchDir }));
  const machine = { cpus: cores, kernel: (await execa('uname', ['-r'])).stdout.trim(), date: new Date().toISOString(), s3: server };
  const text = resultsTable(results);
  console.log(`\n${JSON.stringify(machine)}\n\n${text}\n`);
  await writeFile(path.join(resultsDir, 'bench.json'), `${JSON.stringify({ machine, results: results.map((r) => ({ ...r, ratios: ratios(r) })) }, null, 2)}\n`);
  await writeFile(path.join(resultsDir, 'bench.svg'), renderChart(results));
  await writeFile(path.join(resultsDir, 'bench.md'), `${text}\n`);
  console.log(`written: results/bench.json, results/bench.svg, results/bench.md (${(await stat(path.join(resultsDir, 'bench.svg'))).size} bytes of chart)`);
} finally {
  await imds.stop();
  await s3.stop();
  await rm(scratchDir, { recursive: true, force: true });
}
