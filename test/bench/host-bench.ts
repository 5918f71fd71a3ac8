// `node test/bench/host-bench.ts [--size MIB[,MIB...]] [--kind random|text] [--checkpoint-only] [--bundle DIR]`: the benchmark on a host with neither Docker nor Node, using the task image's bundle (CRIU, the agent, its Node), as root.
//
// For a many-core machine where no Docker engine runs: test/bench/device-bench.sh packs the bundle here and
// runs this there with the bundle's own Node. The figures are those of `npm run bench` (bench-results.ts),
// measured the same way (bench-case.ts), against the fast S3 stand-in on tmpfs. With --checkpoint-only, for a
// task too big to hold beside its snapshot: the plain upload and the first checkpoint alone, against a stand-in
// that checks and drops the packs (host-checkpoint-case.ts), written to results/host-bench-checkpoint.*.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type FastS3, startFastS3 } from '../../localstack/fast-s3-server.ts';
import { ImdsSimulator } from '../../localstack/imds-simulator.ts';
import { TEST_AWS_ENV } from '../support/test-aws-env.ts';
import { availableMemoryBytes } from './available-memory.ts';
import { checkpointOnlyTable, ratios, resultsTable, type CaseResult, type CheckpointOnlyResult, type MemoryKind } from './bench-results.ts';
import { experimentEnv } from './experiment-env.ts';
import { hostBenchCase } from './host-bench-case.ts';
import { hostCheckpointCase } from './host-checkpoint-case.ts';
import { killEverythingStarted } from './host-processes.ts';

const USAGE =
  'usage: node test/bench/host-bench.ts [--size MIB[,MIB...]] [--kind random|text] [--checkpoint-only] [--bundle DIR (default /opt/spotsnap)] [--python PATH]';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function fail(message: string): never {
  console.error(`host-bench: ${message}\n${USAGE}`);
  process.exit(64);
}

const OPTIONS = {
  size: { type: 'string' },
  kind: { type: 'string' },
  bundle: { type: 'string' },
  python: { type: 'string' },
  'checkpoint-only': { type: 'boolean' },
} as const;
let args: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>;
try {
  args = parseArgs({
    options: OPTIONS,
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

const cores = os.availableParallelism();
const checkpointOnly = args.values['checkpoint-only'] === true;
// What a case holds at its fullest, all of it in memory: the restored task beside the first snapshot's objects
// and the second's tenth; or a background checkpoint's task, its spill (at most 4 GiB) and its snapshot. Then
// the stand-in's processes, the agent and this process. A checkpoint-only case holds the task alone.
const perTaskMiB = checkpointOnly ? 1 : 2.15;
const needMiB = (mib: number) => Math.ceil(perTaskMiB * mib + 4096 + 64 * cores + 1024);
const availableMiB = availableMemoryBytes() / 1048576;
for (const mib of sizes) {
  if (needMiB(mib) > availableMiB) {
    const most = Math.floor((availableMiB - 4096 - 64 * cores - 1024) / perTaskMiB);
    const holds = checkpointOnly ? 'itself and its work dir' : "itself, its images and snapshots on tmpfs, a background checkpoint's spill";
    const instead = checkpointOnly ? '' : ', or add --checkpoint-only (the first checkpoint alone, against a stand-in that drops the packs)';
    fail(
      `a ${mib} MiB task needs about ${needMiB(mib)} MiB of memory (${holds}), and this machine has ${availableMiB.toFixed(0)} MiB available: choose a --size of at most ${Math.max(0, most)}${instead}`,
    );
  }
}

Object.assign(process.env, TEST_AWS_ENV);
// A tmpfs of its own, outside the directories where the agent looks for a task's scratch files (/tmp, /var/tmp,
// /dev/shm: agent/task/outside-files.ts): there, the agent would take the stand-in's objects along with the task.
const scratchDir = '/run/spotsnap-host-bench';
/** With --checkpoint-only, the stand-in drops every object above this size: the packs (8 MiB at most), not the small ones. */
const DROPPED_OVER_BYTES = 1 << 20;
const resultsDir = path.join(root, 'results');
// Straight into $OUT when set (the device tool brings back what is there, even from a run cut short).
const logDir = path.join(process.env.OUT || resultsDir, 'host-bench-logs');
const machine = {
  cpus: cores,
  memoryMiB: Math.round(os.totalmem() / 1048576),
  kernel: os.release(),
  date: new Date().toISOString(),
  s3: 'fast',
  where: 'host (bundle, no containers)',
};
let mounted = false;
let s3: FastS3 | undefined;
let imds: ImdsSimulator | undefined;

/** Ends what the run started, whatever happened: every process tree, the stand-ins, the tmpfs. */
async function cleanUp(): Promise<void> {
  await killEverythingStarted();
  // Once only: a signal's clean-up and the run's own finally may both come here.
  const [stopImds, stopS3] = [imds, s3];
  imds = undefined;
  s3 = undefined;
  await stopImds?.stop();
  await stopS3?.stop();
  if (mounted) {
    try {
      execFileSync('umount', [scratchDir]);
    } catch (error) {
      // Still busy (a process this run did not start holds it): detached now, freed once that one lets go.
      console.error(`host-bench: umount ${scratchDir} failed (${(error as Error).message.split('\n')[0]}); detaching it lazily`);
      execFileSync('umount', ['-l', scratchDir]);
    }
    mounted = false;
  }
  await rm(scratchDir, { recursive: true, force: true });
}

/** The results file's name without its extension: the checkpoint-only figures are another table. */
const resultsName = checkpointOnly ? 'host-bench-checkpoint' : 'host-bench';

/** Writes the figures so far (after every case: a run cut short keeps what it measured), and to $OUT when set. */
async function writeResults(results: CaseResult[] | CheckpointOnlyResult[]): Promise<void> {
  const text = checkpointOnly ? checkpointOnlyTable(results as CheckpointOnlyResult[]) : resultsTable(results as CaseResult[]);
  const rows = checkpointOnly ? results : (results as CaseResult[]).map((r) => ({ ...r, ratios: ratios(r) }));
  const json = `${JSON.stringify({ machine, checkpointOnly, results: rows }, null, 2)}\n`;
  for (const dir of [resultsDir, process.env.OUT].filter((d): d is string => Boolean(d))) {
    await writeFile(path.join(dir, `${resultsName}.json`), json);
    await writeFile(path.join(dir, `${resultsName}.md`), `${JSON.stringify(machine)}\n\n${text}\n`);
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`host-bench: ${signal}: ending what the run started`);
    void cleanUp().finally(() => process.exit(128 + (signal === 'SIGINT' ? 2 : 15)));
  });
}

try {
  await mkdir(resultsDir, { recursive: true });
  await mkdir(logDir, { recursive: true });
  await mkdir(scratchDir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${needMiB(Math.max(...sizes))}m`, 'spotsnap-host-bench', scratchDir]);
  mounted = true;
  const s3Dir = path.join(scratchDir, 's3');
  // Run under the bundle's Node, this process's own binary needs the bundle's loader: its processes start through the wrapper.
  const execPath = process.execPath.startsWith(`${bundle}/`) ? path.join(bundle, 'bin/node') : undefined;
  // Checkpoint only: every object over 1 MiB (the packs, a big task's manifest) is checked and dropped; nothing
  // reads them back during a first checkpoint.
  s3 = await startFastS3({ dir: s3Dir, workers: cores, execPath, ...(checkpointOnly ? { discardOver: DROPPED_OVER_BYTES } : {}) });
  imds = new ImdsSimulator();
  await imds.start();
  const target = { bundle, python, s3Endpoint: s3.endpoint, s3Dir, imds, scratchDir, logDir };
  const results: CaseResult[] = [];
  const checkpoints: CheckpointOnlyResult[] = [];
  for (const mib of sizes) {
    for (const kind of kinds) {
      if (checkpointOnly) checkpoints.push(await hostCheckpointCase(mib, kind, target));
      else results.push(await hostBenchCase(mib, kind, target));
      await writeResults(checkpointOnly ? checkpoints : results);
    }
  }
  const table = checkpointOnly ? checkpointOnlyTable(checkpoints) : resultsTable(results);
  console.log(`\n${JSON.stringify(machine)}\n\n${table}\n`);
  console.log(`written after each case: results/${resultsName}.json and .md${process.env.OUT ? ', and $OUT' : ''}; each attempt's output in ${logDir}`);
} finally {
  await cleanUp();
}
