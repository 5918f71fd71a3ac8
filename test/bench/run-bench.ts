// `npm run bench [-- --size MIB]`: checkpoint and restore speed against raw CRIU and raw S3 transfers, measured in one run.
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { execa } from 'execa';
import { randomBytes, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { parseManifest, type Manifest } from '../../agent/store/manifest.ts';
import { deleteKeys, listAll } from '../../agent/store/s3-objects.ts';
import { ImdsSimulator } from '../../localstack/imds-simulator.ts';
import { jobEnv } from '../support/job-env.ts';
import { emulatorClient, startS3Emulator } from '../support/s3-emulator.ts';
import { agentLog, TASK_IMAGE, waitForLog } from '../support/task-container.ts';
import { renderChart } from './bench-chart.ts';

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

const TASK = (mib: number) => ['python3', '/opt/spotsnap/samples/bench-task.py', String(mib)];
const TMPFS = { '/tmpfs': 'rw,size=8g' };

export interface SizeResult {
  mib: number;
  imageBytes: number;
  rawDumpMs: number;
  rawUploadMs: number;
  rawDownloadMs: number;
  rawRestoreMs: number;
  naive: { dumpMs: number; tarMs: number; uploadMs: number; totalMs: number };
  first: { totalMs: number; uploadedBytes: number; agentPeakRssBytes: number };
  second: { totalMs: number; uploadedBytes: number; agentPeakRssBytes: number };
  restore: { totalMs: number; agentPeakRssBytes: number };
}

function container(command: string[], env: Record<string, string> = {}, entrypoint?: string[]): GenericContainer {
  const c = new GenericContainer(TASK_IMAGE)
    .withNetworkMode('host')
    .withAddedCapabilities('ALL')
    .withDroppedCapabilities('SYS_RESOURCE')
    .withSecurityOpt('seccomp=unconfined', 'apparmor=unconfined')
    .withTmpFs(TMPFS)
    .withEnvironment(env)
    .withCommand(command)
    .withStartupTimeout(300_000);
  return entrypoint ? c.withEntrypoint(entrypoint) : c;
}

/** A task container that only sleeps, for commands run in it with `docker exec`. */
function idleContainer(): Promise<StartedTestContainer> {
  return container(['infinity'], {}, ['sleep']).withWaitStrategy(Wait.forSuccessfulCommand('true')).start();
}

/** Runs a shell command in the container and returns how long the command itself took (timed inside). */
async function timedExec(c: StartedTestContainer, script: string): Promise<number> {
  const out = await execa('docker', ['exec', c.getId(), 'sh', '-c', `s=$(date +%s%N); ${script} >/tmp/exec.log 2>&1 || { cat /tmp/exec.log >&2; exit 1; }; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))`]);
  return Number(out.stdout.trim().split('\n').pop());
}

async function peakRss(c: StartedTestContainer): Promise<number> {
  const out = await execa('docker', ['exec', c.getId(), 'grep', 'VmHWM', '/proc/1/status']);
  return Number(/(\d+)/.exec(out.stdout)![1]) * 1024;
}

/**
 * Starts the bench task without the agent, but as the agent would (init of its own PID namespace, session
 * leader), and waits until its memory is filled. Returns the host PID of the namespace init, to dump.
 */
async function startRawTask(mib: number): Promise<{ c: StartedTestContainer; pid: number }> {
  const c = await idleContainer();
  const script = `echo $$ > /tmp/unshare.pid; exec unshare --pid --fork setsid ${TASK(mib).join(' ')} </dev/null >/tmp/task.log 2>&1`;
  await execa('docker', ['exec', '-d', '-w', '/tmp', c.getId(), 'sh', '-c', script]);
  for (;;) {
    const log = await execa('docker', ['exec', c.getId(), 'sh', '-c', 'cat /tmp/task.log; cat /proc/$(cat /tmp/unshare.pid)/task/*/children'], { reject: false });
    const pid = /^\s*(\d+)\s*$/m.exec(log.stdout.split('\n').slice(1).join('\n'))?.[1];
    if (/^ready/m.test(log.stdout) && pid) return { c, pid: Number(pid) };
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function upload(client: ReturnType<typeof emulatorClient>, bucket: string, key: string, body: Readable): Promise<number> {
  const started = performance.now();
  await new Upload({ client, params: { Bucket: bucket, Key: key, Body: body }, partSize: 8 << 20, queueSize: 6 }).done();
  return performance.now() - started;
}

function repeated(bytes: number): Readable {
  const block = randomBytes(16 << 20);
  async function* gen() {
    for (let sent = 0; sent < bytes; sent += block.length) yield block.subarray(0, Math.min(block.length, bytes - sent));
  }
  return Readable.from(gen());
}

async function deletePrefix(client: ReturnType<typeof emulatorClient>, bucket: string, prefix: string): Promise<void> {
  await deleteKeys(client, bucket, (await listAll(client, bucket, prefix)).objects.map((o) => o.key));
}

async function committedManifests(client: ReturnType<typeof emulatorClient>, bucket: string, jobId: string): Promise<Manifest[]> {
  const { objects } = await listAll(client, bucket, `snapshots/${jobId}/snapshots/`);
  const keys = objects.map((o) => o.key).filter((k) => k.endsWith('manifest.json')).sort();
  return Promise.all(keys.map(async (Key) => parseManifest(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body!.transformToString())));
}

async function benchSize(mib: number, s3Endpoint: string, imds: ImdsSimulator): Promise<SizeResult> {
  const client = emulatorClient(s3Endpoint);
  const bucket = `bench-${mib}-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  console.log(`\n== ${mib} MiB`);

  // 1. Raw CRIU dump to tmpfs, then raw restore from tmpfs (the memory-side limits). The restore runs where
  // spotsnap's does, in a fresh container, after the dumped one is gone: this VM hands freed memory back to the
  // hypervisor (free page reporting), so a restore into the memory its dumped task had just freed is
  // measured here at a third of the time of one into memory given back, which is what a new attempt gets.
  const raw = await startRawTask(mib);
  const rawDumpMs = await timedExec(raw.c, `mkdir -p /tmpfs/raw && criu dump -t ${raw.pid} -D /tmpfs/raw -o dump.log`);
  const imageBytes = Number((await execa('docker', ['exec', raw.c.getId(), 'du', '-sb', '/tmpfs/raw'])).stdout.split(/\s/)[0]);
  const restorer = await idleContainer();
  // The images, and the file the task's output went to (CRIU reopens it), as the dumped container had them.
  await execa('sh', ['-c', `docker exec ${raw.c.getId()} tar -cf - /tmpfs/raw /tmp/task.log | docker exec -i ${restorer.getId()} tar -C / -xf -`]);
  await raw.c.stop({ remove: true, timeout: 0 });
  await new Promise((r) => setTimeout(r, 3000));
  const rawRestoreMs = await timedExec(restorer, 'cd /tmp && criu restore -d -D /tmpfs/raw -o restore.log || { tail -n 20 /tmpfs/raw/restore.log; exit 1; }');
  await restorer.stop({ remove: true, timeout: 0 });
  console.log(`raw dump ${rawDumpMs} ms, raw restore ${rawRestoreMs} ms, ${(imageBytes / 1048576).toFixed(0)} MiB of images`);

  // 2. Raw upload and download of as many bytes (the network-side limits).
  const rawUploadMs = await upload(client, bucket, 'raw/object', repeated(imageBytes));
  const downloadStarted = performance.now();
  const body = (await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'raw/object' }))).Body as Readable;
  for await (const chunk of body) void chunk;
  const rawDownloadMs = performance.now() - downloadStarted;
  console.log(`raw upload ${rawUploadMs.toFixed(0)} ms, raw download ${rawDownloadMs.toFixed(0)} ms`);
  // The emulator keeps objects in memory: free what is measured, so later stages run with the same headroom.
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'raw/object' }));

  // 3. The naive pipeline: dump, then tar, then upload, one after the other.
  const naiveTask = await startRawTask(mib);
  const naiveDumpMs = await timedExec(naiveTask.c, `mkdir -p /tmpfs/naive && criu dump -t ${naiveTask.pid} -D /tmpfs/naive -o dump.log`);
  const naiveTarMs = await timedExec(naiveTask.c, 'tar -C /tmpfs -cf /tmpfs/naive.tar naive');
  const local = path.join(resultsDir, `naive-${mib}.tar`);
  // docker cp cannot read a tmpfs mount: stream the archive out instead (not timed).
  await execa('docker', ['exec', naiveTask.c.getId(), 'cat', '/tmpfs/naive.tar'], { stdout: { file: local }, buffer: false });
  await naiveTask.c.stop({ remove: true, timeout: 0 });
  const naiveUploadMs = await upload(client, bucket, 'naive/images.tar', createReadStream(local));
  await rm(local);
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'naive/images.tar' }));
  const naive = { dumpMs: naiveDumpMs, tarMs: naiveTarMs, uploadMs: naiveUploadMs, totalMs: naiveDumpMs + naiveTarMs + naiveUploadMs };
  console.log(`naive: dump ${naiveDumpMs} + tar ${naiveTarMs} + upload ${naiveUploadMs.toFixed(0)} ms`);

  // 4. spotsnap: first checkpoint, restore in a new container, 10% of memory changed, second checkpoint.
  const jobId = `bench-${mib}-${randomUUID().slice(0, 8)}`;
  const env = (attempt: number) => ({
    ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt }),
    SPOTSNAP_WORK_DIR: '/tmpfs/spotsnap',
    SPOTSNAP_CHECKPOINT_INTERVAL: 'off',
    ...(process.env.BENCH_EXPERIMENT_ENV ? JSON.parse(process.env.BENCH_EXPERIMENT_ENV) : {}),
  });
  const first = await container(TASK(mib), env(1)).withWaitStrategy(Wait.forLogMessage(/^ready/m)).start();
  imds.scheduleNotice(0);
  await waitForLog(first, /"msg":"checkpoint committed"/, 600_000);
  const firstRss = await peakRss(first);
  console.log('checkpoint log:', JSON.stringify(agentLog((await execa('docker', ['logs', first.getId()])).stderr).find((l) => l.msg === 'checkpoint committed')));
  imds.clearNotice();
  await first.stop({ remove: true, timeout: 0 });
  const [firstManifest] = await committedManifests(client, bucket, jobId);

  const second = await container(TASK(mib), env(2)).withWaitStrategy(Wait.forLogMessage(/task restored from snapshot/)).start();
  const startedAt = Date.parse((await execa('docker', ['inspect', '--format', '{{.State.StartedAt}}', second.getId()])).stdout.trim());
  const restoredLine = agentLog((await execa('docker', ['logs', second.getId()])).stderr).find((l) => l.msg === 'task restored from snapshot')!;
  const restoreTotalMs = Date.parse(String(restoredLine.time)) - startedAt;
  const restoreRss = await peakRss(second);
  console.log('restore log:', JSON.stringify({ restoreMs: restoredLine.restoreMs, downloadMs: restoredLine.downloadMs, criuRestoreMs: restoredLine.criuRestoreMs, agentMemory: restoredLine.agentMemory, agentCpuSinceStart: restoredLine.agentCpuSinceStart }));
  await execa('docker', ['exec', '-w', '/work', second.getId(), 'touch', 'change-now']);
  await waitForLog(second, /changed 10%/, 120_000);
  imds.scheduleNotice(0);
  await waitForLog(second, /"msg":"checkpoint committed"/, 600_000);
  const secondRss = await peakRss(second);
  imds.clearNotice();
  await second.stop({ remove: true, timeout: 0 });
  const secondManifest = (await committedManifests(client, bucket, jobId)).at(-1)!;
  await deletePrefix(client, bucket, `snapshots/${jobId}/`);

  const result: SizeResult = {
    mib,
    imageBytes,
    rawDumpMs,
    rawUploadMs: Math.round(rawUploadMs),
    rawDownloadMs: Math.round(rawDownloadMs),
    rawRestoreMs,
    naive: { ...naive, uploadMs: Math.round(naive.uploadMs), totalMs: Math.round(naive.totalMs) },
    first: { totalMs: firstManifest!.timings.totalMs, uploadedBytes: firstManifest!.transfer.uploadedBytes, agentPeakRssBytes: firstRss },
    second: { totalMs: secondManifest.timings.totalMs, uploadedBytes: secondManifest.transfer.uploadedBytes, agentPeakRssBytes: secondRss },
    restore: { totalMs: restoreTotalMs, agentPeakRssBytes: restoreRss },
  };
  console.log(`spotsnap: first ${result.first.totalMs} ms, second ${result.second.totalMs} ms, restore ${restoreTotalMs} ms`);
  return result;
}

/**
 * Touches most of the machine's free memory once, in a throwaway container, before anything is measured.
 * On a VM whose memory the hypervisor backs lazily, the first touch of a guest page costs several times a
 * later one (measured here: 5.7 s to fill 2 GiB the first time, 0.9-1.3 s after); without this, whichever
 * stage first lands on never-used memory (a restore, more often than not) pays for it, whatever the software.
 */
async function warmGuestMemory(): Promise<void> {
  const { stdout } = await execa('sh', ['-c', "awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo"]);
  const mib = Math.max(0, Math.min(Number(stdout) - 4096, 16384));
  if (mib === 0) return;
  const started = performance.now();
  await execa('docker', ['run', '--rm', '--network', 'host', '--entrypoint', 'python3', TASK_IMAGE, '-c', `x = b"\\1" * (${mib} << 20)`]);
  console.log(`warmed ${mib} MiB of guest memory in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

function ratios(r: SizeResult) {
  return {
    firstVsLimit: r.first.totalMs / Math.max(r.rawDumpMs, r.rawUploadMs),
    naiveVsFirst: r.naive.totalMs / r.first.totalMs,
    secondBytesShare: r.second.uploadedBytes / r.first.uploadedBytes,
    restoreVsRaw: r.restore.totalMs / (r.rawDownloadMs + r.rawRestoreMs),
    peakRssMiB: Math.max(r.first.agentPeakRssBytes, r.second.agentPeakRssBytes, r.restore.agentPeakRssBytes) / 1048576,
  };
}

function table(results: SizeResult[]): string {
  const mib = (b: number) => (b / 1048576).toFixed(0);
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const lines = [
    '| task | images MiB | raw dump s | raw upload s | naive s | first checkpoint s | vs max(raw) (target <= 1.15) | naive / first (target >= 2) | second s | second sent MiB (share, target <= 15%) | raw download + restore s | restore s | vs raw (target <= 1.3) | agent peak RSS MiB (target <= 128) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    const q = ratios(r);
    lines.push(
      `| ${r.mib} MiB | ${mib(r.imageBytes)} | ${s(r.rawDumpMs)} | ${s(r.rawUploadMs)} | ${s(r.naive.totalMs)} | ${s(r.first.totalMs)} | ${q.firstVsLimit.toFixed(2)} | ${q.naiveVsFirst.toFixed(2)} | ${s(r.second.totalMs)} | ${mib(r.second.uploadedBytes)} (${(q.secondBytesShare * 100).toFixed(1)}%) | ${s(r.rawDownloadMs + r.rawRestoreMs)} | ${s(r.restore.totalMs)} | ${q.restoreVsRaw.toFixed(2)} | ${q.peakRssMiB.toFixed(0)} |`,
    );
  }
  return lines.join('\n');
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
  for (const mib of SIZES_MIB) results.push(await benchSize(mib, s3.endpoint, imds));
  const machine = { cpus: (await execa('nproc')).stdout.trim(), kernel: (await execa('uname', ['-r'])).stdout.trim(), date: new Date().toISOString() };
  const text = table(results);
  console.log(`\n${text}\n`);
  await writeFile(path.join(resultsDir, 'bench.json'), `${JSON.stringify({ machine, results: results.map((r) => ({ ...r, ratios: ratios(r) })) }, null, 2)}\n`);
  await writeFile(path.join(resultsDir, 'bench.svg'), renderChart(results));
  await writeFile(path.join(resultsDir, 'bench.md'), `${text}\n`);
  console.log(`written: results/bench.json, results/bench.svg, results/bench.md (${(await stat(path.join(resultsDir, 'bench.svg'))).size} bytes of chart)`);
} finally {
  await imds.stop();
  await s3.container.stop();
}
