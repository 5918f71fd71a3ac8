// `npm run bench [-- --size MIB]`: checkpoint and restore speed against raw CRIU and raw S3 transfers, measured in one run.
import { execa } from 'execa';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImdsSimulator } from '../../localstack/imds-simulator.ts';
import { startS3Emulator } from '../support/s3-emulator.ts';
import { renderChart } from './bench-chart.ts';
import { warmGuestMemory } from './bench-containers.ts';
import { ratios, resultsTable, type SizeResult } from './bench-results.ts';
import { benchSize } from './bench-size.ts';

process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const resultsDir = path.join(root, 'results');

const sizeArg = process.argv.indexOf('--size');
const SIZES_MIB = sizeArg >= 0 ? [Number(process.argv[sizeArg + 1])] : [256, 1024, 2048];
if (SIZES_MIB.some((s) => !Number.isInteger(s) || s < 16 || s > 8192)) {
  console.error(`bench: --size ${JSON.stringify(process.argv[sizeArg + 1])} is not a whole number of MiB from 16 to 8192`);
  process.exit(64);
}

const docker = await execa('docker', ['info', '--format', '{{.ServerVersion}}'], { reject: false });
if (docker.exitCode !== 0) {
  console.error('bench: no Docker engine answers ("docker info" failed). Start one (see .ci/run) and run again.');
  process.exit(1);
}
await mkdir(resultsDir, { recursive: true });
await execa(path.join(root, 'docker/build-images.sh'), { stdio: 'inherit' });
await warmGuestMemory();
const s3 = await startS3Emulator();
const imds = new ImdsSimulator();
await imds.start();
try {
  const results: SizeResult[] = [];
  for (const mib of SIZES_MIB) results.push(await benchSize(mib, s3.endpoint, imds, resultsDir));
  const machine = { cpus: (await execa('nproc')).stdout.trim(), kernel: (await execa('uname', ['-r'])).stdout.trim(), date: new Date().toISOString() };
  const text = resultsTable(results);
  console.log(`\n${text}\n`);
  await writeFile(path.join(resultsDir, 'bench.json'), `${JSON.stringify({ machine, results: results.map((r) => ({ ...r, ratios: ratios(r) })) }, null, 2)}\n`);
  await writeFile(path.join(resultsDir, 'bench.svg'), renderChart(results));
  await writeFile(path.join(resultsDir, 'bench.md'), `${text}\n`);
  console.log(`written: results/bench.json, results/bench.svg, results/bench.md (${(await stat(path.join(resultsDir, 'bench.svg'))).size} bytes of chart)`);
} finally {
  await imds.stop();
  await s3.container.stop();
}
