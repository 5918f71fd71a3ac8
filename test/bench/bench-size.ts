// One task size of the benchmark: raw CRIU, raw S3, the naive pipeline and spotsnap, measured one after the other.
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { Wait } from 'testcontainers';
import { CriuCli } from '../../criu-bridge/criu-cli.ts';
import type { ImdsSimulator } from '../../localstack/imds-simulator.ts';
import { jobEnv } from '../support/job-env.ts';
import { emulatorClient } from '../support/s3-emulator.ts';
import { agentLog, waitForLog } from '../support/task-container.ts';
import { container, idleContainer, peakRss, startRawTask, TASK, timedExec } from './bench-containers.ts';
import type { SizeResult } from './bench-results.ts';
import { committedManifests, deletePrefix, repeated, upload } from './bench-s3.ts';

/** Measures a task of `mib` MiB against the S3 emulator at `s3Endpoint`; `resultsDir` holds the naive pipeline's archive for a while. */
export async function benchSize(mib: number, s3Endpoint: string, imds: ImdsSimulator, resultsDir: string): Promise<SizeResult> {
  const client = emulatorClient(s3Endpoint);
  const bucket = `bench-${mib}-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  console.log(`\n== ${mib} MiB`);

  // 1. Raw CRIU dump to tmpfs, then raw restore from tmpfs (the memory-side limits). The restore runs where
  // spotsnap's does, in a fresh container, after the dumped one is gone: this VM hands freed memory back to the
  // hypervisor (free page reporting), so a restore into the memory its dumped task had just freed is
  // measured here at a third of the time of one into memory given back, which is what a new attempt gets.
  const criu = new CriuCli();
  const raw = await startRawTask(mib);
  const rawDumpMs = await timedExec(raw.c, `mkdir -p /tmpfs/raw && ${criu.baselineDumpCommand(raw.pid, '/tmpfs/raw', 'dump.log').join(' ')}`);
  const imageBytes = Number((await execa('docker', ['exec', raw.c.getId(), 'du', '-sb', '/tmpfs/raw'])).stdout.split(/\s/)[0]);
  const restorer = await idleContainer();
  // The images, and the file the task's output went to (CRIU reopens it), as the dumped container had them.
  await execa('sh', ['-c', `docker exec ${raw.c.getId()} tar -cf - /tmpfs/raw /tmp/task.log | docker exec -i ${restorer.getId()} tar -C / -xf -`]);
  await raw.c.stop({ remove: true, timeout: 0 });
  await new Promise((r) => setTimeout(r, 3000));
  const rawRestoreMs = await timedExec(
    restorer,
    `cd /tmp && ${criu.baselineRestoreCommand('/tmpfs/raw', 'restore.log').join(' ')} || { tail -n 20 /tmpfs/raw/restore.log; exit 1; }`,
  );
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
  const naiveDumpMs = await timedExec(naiveTask.c, `mkdir -p /tmpfs/naive && ${criu.baselineDumpCommand(naiveTask.pid, '/tmpfs/naive', 'dump.log').join(' ')}`);
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
  const first = await container(TASK(mib), env(1))
    .withWaitStrategy(Wait.forLogMessage(/^ready/m))
    .start();
  imds.scheduleNotice(0);
  await waitForLog(first, /"msg":"checkpoint committed"/, 600_000);
  const firstRss = await peakRss(first);
  console.log(
    'checkpoint log:',
    JSON.stringify(agentLog((await execa('docker', ['logs', first.getId()])).stderr).find((l) => l.msg === 'checkpoint committed')),
  );
  imds.clearNotice();
  await first.stop({ remove: true, timeout: 0 });
  const [firstManifest] = await committedManifests(client, bucket, jobId);

  const second = await container(TASK(mib), env(2))
    .withWaitStrategy(Wait.forLogMessage(/task restored from snapshot/))
    .start();
  const startedAt = Date.parse((await execa('docker', ['inspect', '--format', '{{.State.StartedAt}}', second.getId()])).stdout.trim());
  const restoredLine = agentLog((await execa('docker', ['logs', second.getId()])).stderr).find((l) => l.msg === 'task restored from snapshot')!;
  const restoreTotalMs = Date.parse(String(restoredLine.time)) - startedAt;
  const restoreRss = await peakRss(second);
  console.log(
    'restore log:',
    JSON.stringify({
      restoreMs: restoredLine.restoreMs,
      downloadMs: restoredLine.downloadMs,
      criuRestoreMs: restoredLine.criuRestoreMs,
      agentMemory: restoredLine.agentMemory,
      agentCpuSinceStart: restoredLine.agentCpuSinceStart,
    }),
  );
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
