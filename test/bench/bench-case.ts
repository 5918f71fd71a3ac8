// One task of the benchmark (a size and a kind of memory): the plain limits, then spotsnap's checkpoints and restore, one after the other.
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Wait, type StartedTestContainer } from 'testcontainers';
import { CriuCli } from '../../criu-bridge/criu-cli.ts';
import type { ImdsSimulator } from '../../localstack/imds-simulator.ts';
import { ENV_VARS } from '../../agent/config/env-vars.ts';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import { emulatorClient } from '../support/s3-emulator.ts';
import { agentEvent, agentLog, type AgentLine, committedCheckpoints, eventLine, waitForLog } from '../support/task-container.ts';
import { container, idleContainer, peakRss, startRawTask, TASK, timedExec } from './bench-containers.ts';
import { availableMemoryBytes } from './available-memory.ts';
import { measurePlainDownload, measurePlainUpload, plainPieceKeys } from './bench-limits.ts';
import { experimentEnv } from './experiment-env.ts';
import {
  backgroundOf,
  checkpointFromLog,
  limitsOf,
  spotsnapTimes,
  wholeTaskCheckpoint,
  type CaseResult,
  type Checkpoint,
  type MemoryKind,
} from './bench-results.ts';
import { committedManifests, deleteKeysIn, deletePrefix } from './bench-s3.ts';

export interface BenchTarget {
  s3Endpoint: string;
  imds: ImdsSimulator;
  /** A tmpfs directory on the host for the benchmark's own files. */
  scratchDir: string;
}

/** What the machine must keep free beside a case's task, its objects and a background checkpoint's spill. */
const MEMORY_MARGIN_BYTES = 2 * 2 ** 30;

/**
 * The SPOTSNAP_SPILL_LIMIT that keeps a background checkpoint of a task of `imageBytes` within the host's free
 * memory, or undefined where the agent's own limits (SPOTSNAP_SPILL_LIMIT's default, half the headroom it sees)
 * already do: the spill, the task and the stand-in's objects (tmpfs, all three) are in memory together, and the
 * agent cannot see the stand-in's objects grow. Without it an 8 GiB case on a 24 GiB machine would run out of
 * memory. Never above the default, so that a cap only ever lowers it; throws where no room is left for a spill.
 */
function spillCapForMemory(imageBytes: number): string | undefined {
  const available = availableMemoryBytes();
  const room = Math.floor(available - 2 * imageBytes - MEMORY_MARGIN_BYTES);
  if (room >= Math.min(imageBytes, ENV_VARS.spillLimit.defaultValue)) return undefined;
  if (room < 2 ** 20)
    throw new Error(
      `bench: no memory is left for a background checkpoint's spill beside a task of ${imageBytes} bytes and its snapshot (${available} bytes available); run a smaller --size`,
    );
  return `${Math.floor(room / 2 ** 20)}MiB`;
}

/**
 * The plain dump's images in `c` (`/tmpfs/raw/*.img`) as host paths, through the container's root in /proc.
 * That takes root on the Docker engine's own host (as `.ci/run` and the benchmark's other steps have it); a
 * remote engine, or a user who may not read another root process's root, is refused with what to do.
 */
async function imageFilesOf(c: StartedTestContainer): Promise<string[]> {
  const pid = (await execa('docker', ['inspect', '--format', '{{.State.Pid}}', c.getId()])).stdout.trim();
  const names = (await execa('docker', ['exec', c.getId(), 'sh', '-c', 'cd /tmpfs/raw && ls -1 -- *.img'])).stdout.trim().split('\n');
  const files = names.map((name) => `/proc/${pid}/root/tmpfs/raw/${name}`);
  try {
    accessSync(files[0]!, constants.R_OK);
  } catch (error) {
    throw new Error(
      `bench: cannot read the dumped images through ${files[0]} (${(error as Error).message}); run the benchmark as root on the host whose Docker engine runs the containers`,
    );
  }
  return files;
}

async function logsOf(c: StartedTestContainer): Promise<string> {
  return (await execa('docker', ['logs', c.getId()])).stderr;
}

/** The agent's log lines of `event`, as logged. */
async function eventLines(c: StartedTestContainer, event: string): Promise<AgentLine[]> {
  return agentLog(await logsOf(c)).filter((l) => l.event === event);
}

/** A committed checkpoint's figures from its log line. */
async function checkpointFigures(c: StartedTestContainer, line: AgentLine | undefined): Promise<Checkpoint & { frozenMs: number }> {
  if (!line) throw new Error("bench: no committed checkpoint in the agent's log");
  console.log(`${String(line.checkpoint)} checkpoint:`, JSON.stringify(line));
  return checkpointFromLog(line, await peakRss(c));
}

/** Waits for a background checkpoint of the whole task (wholeTaskCheckpoint). */
async function wholeBackgroundCheckpoint(c: StartedTestContainer, imageBytes: number): Promise<AgentLine> {
  for (;;) {
    await waitForLog(c, eventLine(LogEvent.checkpointCommitted), 600_000);
    const whole = wholeTaskCheckpoint(committedCheckpoints(await logsOf(c), 'background'), imageBytes);
    if (whole) return whole;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/**
 * Writes `mib` MiB (and a little more) into the container's tmpfs and frees it again: on this VM memory handed
 * back to the hypervisor costs several times more at its first touch, and memory just freed is ready again.
 */
async function warmMemory(c: StartedTestContainer, mib: number): Promise<void> {
  const warmed = await execa('docker', ['exec', c.getId(), 'sh', '-c', `head -c ${mib + 64}M /dev/zero > /tmpfs/warm; s=$?; rm -f /tmpfs/warm; exit $s`], {
    reject: false,
  });
  // A tmpfs too full for it (an 8 GiB task's images beside 8 GiB more) leaves the limit unwarmed: said, not hidden.
  if (warmed.exitCode !== 0) console.warn(`bench: could not warm ${mib} MiB of memory before a plain limit (${warmed.stderr.trim()}); it may run slower`);
}

/** Copies the plain dump's images (`/tmpfs/raw`) from one container into another. */
async function copyImages(from: StartedTestContainer, to: StartedTestContainer): Promise<void> {
  await execa('sh', ['-c', `docker exec ${from.getId()} tar -cf - /tmpfs/raw | docker exec -i ${to.getId()} tar -C / -xf -`]);
}

/** Times `criu restore` of the images in `/tmpfs/raw` of `c`, with the task's output file put back from `taskLogTar` first. */
async function plainRestore(c: StartedTestContainer, taskLogTar: string, criu: CriuCli, mib: number): Promise<number> {
  await execa('docker', ['exec', '-i', c.getId(), 'tar', '-C', '/', '-xf', '-'], { inputFile: taskLogTar });
  await warmMemory(c, mib);
  return timedExec(c, `cd /tmp && ${criu.baselineRestoreCommand('/tmpfs/raw', 'restore.log').join(' ')} || { tail -n 20 /tmpfs/raw/restore.log; exit 1; }`);
}

/** Measures a task of `mib` MiB of `kind` memory against the S3 server of `target`. */
export async function benchCase(mib: number, kind: MemoryKind, target: BenchTarget): Promise<CaseResult> {
  const { s3Endpoint, imds } = target;
  const client = emulatorClient(s3Endpoint);
  const bucket = `bench-${mib}-${kind}-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  console.log(`\n== ${mib} MiB, ${kind} memory`);

  // 1. Plain CRIU dump to tmpfs, then plain restore from tmpfs (the memory-side limits). The restore runs where
  // spotsnap's does, in a fresh container, after the dumped one is gone: this VM hands freed memory back to the
  // hypervisor (free page reporting), so a restore into the memory its dumped task had just freed is
  // measured here at a third of the time of one into memory given back, which is what a new attempt gets.
  const criu = new CriuCli();
  const raw = await startRawTask(mib, kind);
  // The faster of two dumps of the same task (the first leaves it running, and its images are deleted): on
  // this VM the first touch of tmpfs memory that was given back to the hypervisor has made one plain dump of
  // 1 GiB take 3.2 s against 0.5-1.0 s in other runs, slower than spotsnap's whole checkpoint, and a limit
  // slower than spotsnap is no limit.
  // Each dump, and each restore below, right after memory of the task's size was written and freed in its
  // container: a background checkpoint writes its windows into tmpfs memory it wrote ahead before the freeze
  // (window-spill.ts), and a plain dump into memory just as ready is the fastest plain way to do the same.
  await warmMemory(raw.c, mib);
  const trialDumpMs = await timedExec(
    raw.c,
    `mkdir -p /tmpfs/trial && ${criu.baselineDumpCommand(raw.pid, '/tmpfs/trial', 'dump.log').join(' ')} --leave-running`,
  );
  await execa('docker', ['exec', raw.c.getId(), 'rm', '-rf', '/tmpfs/trial']);
  await warmMemory(raw.c, mib);
  const lastDumpMs = await timedExec(raw.c, `mkdir -p /tmpfs/raw && ${criu.baselineDumpCommand(raw.pid, '/tmpfs/raw', 'dump.log').join(' ')}`);
  const dumpMs = Math.min(trialDumpMs, lastDumpMs);
  const imageFiles = await imageFilesOf(raw.c);
  const imageBytes = imageFiles.reduce((sum, file) => sum + statSync(file).size, 0);

  // 2. Plain upload and download of the same bytes (the network-side limits), at their fastest in-flight counts,
  // read where the dump wrote them (the container's tmpfs, through its root in /proc): no copy of the images is
  // made, so that an 8 GiB case needs the images and the stand-in's objects beside each other, not a third copy.
  // The dump ended the task, so its memory is free by now.
  const up = await measurePlainUpload(s3Endpoint, bucket, imageFiles, { prefix: 'plain/' });
  const down = await measurePlainDownload(s3Endpoint, bucket, imageFiles, { prefix: 'plain/' });
  await deleteKeysIn(client, bucket, plainPieceKeys(imageBytes, { prefix: 'plain/' }));
  console.log(
    `plain upload ${(up.seconds * 1000).toFixed(0)} ms (${up.inFlight} in flight), plain download ${(down.seconds * 1000).toFixed(0)} ms (${down.inFlight} in flight)`,
  );

  // The faster of two plain restores, each in a fresh container, for the same reason as the dumps: one plain
  // restore of 2 GiB took 6.4 s, into memory the VM had handed back, where spotsnap's whole restore took 6.1 s.
  // The file the task's output went to (CRIU reopens it, and checks its size) as the dumped container had it.
  const taskLogTar = path.join(target.scratchDir, `${bucket}.task-log.tar`);
  await execa('docker', ['exec', raw.c.getId(), 'tar', '-cf', '-', '/tmp/task.log'], { stdout: { file: taskLogTar }, buffer: false });
  const firstRestorer = await idleContainer();
  await copyImages(raw.c, firstRestorer);
  await raw.c.stop({ remove: true, timeout: 0 });
  const firstRestoreMs = await plainRestore(firstRestorer, taskLogTar, criu, mib);
  // The restored task goes (kill -1 spares the caller and the container's init); its images go on to the next.
  await execa('docker', ['exec', firstRestorer.getId(), 'sh', '-c', 'kill -9 -1 || true']);
  const lastRestorer = await idleContainer();
  await copyImages(firstRestorer, lastRestorer);
  await firstRestorer.stop({ remove: true, timeout: 0 });
  const lastRestoreMs = await plainRestore(lastRestorer, taskLogTar, criu, mib);
  await lastRestorer.stop({ remove: true, timeout: 0 });
  await rm(taskLogTar);
  const restoreMs = Math.min(firstRestoreMs, lastRestoreMs);
  console.log(
    `plain dump ${dumpMs} ms (of ${trialDumpMs} and ${lastDumpMs}), plain restore ${restoreMs} ms (of ${firstRestoreMs} and ${lastRestoreMs}), ${(imageBytes / 1048576).toFixed(0)} MiB of images`,
  );

  // 3. spotsnap: first checkpoint at a notice, restore in a new container, 10% of memory changed, second checkpoint.
  const jobId = `bench-${mib}-${kind}-${randomUUID().slice(0, 8)}`;
  const env = (attempt: number, extra: Record<string, string> = {}) => ({
    ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt }),
    SPOTSNAP_WORK_DIR: '/tmpfs/spotsnap',
    SPOTSNAP_CHECKPOINT_INTERVAL: 'off',
    ...extra,
    ...experimentEnv(),
  });
  const first = await container(TASK(mib, kind), env(1))
    .withWaitStrategy(Wait.forLogMessage(/^ready/m))
    .start();
  imds.scheduleNotice(0);
  await waitForLog(first, eventLine(LogEvent.checkpointCommitted), 600_000);
  const firstFigures = await checkpointFigures(first, committedCheckpoints(await logsOf(first), 'final')[0]);
  imds.clearNotice();
  await first.stop({ remove: true, timeout: 0 });
  const [firstManifest] = await committedManifests(client, bucket, jobId);

  const second = await container(TASK(mib, kind), env(2))
    .withWaitStrategy(Wait.forLogMessage(eventLine(LogEvent.restoreDone)))
    .start();
  const startedAt = Date.parse((await execa('docker', ['inspect', '--format', '{{.State.StartedAt}}', second.getId()])).stdout.trim());
  const restored = agentEvent(await logsOf(second), LogEvent.restoreDone)!;
  // Until the restored task runs again: restore.done itself comes RESTORE_CONFIRM_MS later, while the task already runs.
  const restoreTotalMs = Date.parse(String(restored.runningAt)) - startedAt;
  if (Number.isNaN(restoreTotalMs)) throw new Error(`restore.done has no runningAt time: ${JSON.stringify(restored)}`);
  const restoreRss = await peakRss(second);
  console.log('restore:', JSON.stringify(restored));
  // When CRIU asked for the memory pages and when the last of them was in its pipe, when the restore streamed.
  const streamed = agentEvent(await logsOf(second), LogEvent.restoreStreamed);
  if (streamed) console.log('restore streamed:', JSON.stringify(streamed));
  await execa('docker', ['exec', '-w', '/work', second.getId(), 'touch', 'change-now']);
  await waitForLog(second, /changed 10%/, 120_000);
  imds.scheduleNotice(0);
  await waitForLog(second, eventLine(LogEvent.checkpointCommitted), 600_000);
  const secondFigures = await checkpointFigures(second, committedCheckpoints(await logsOf(second), 'final')[0]);
  imds.clearNotice();
  await second.stop({ remove: true, timeout: 0 });
  const secondManifest = (await committedManifests(client, bucket, jobId)).at(-1)!;
  await deletePrefix(client, bucket, `snapshots/${jobId}/`);

  // 4. A background checkpoint of a fresh task: how long it keeps the task frozen.
  const backgroundJob = `${jobId}-bg`;
  const spillCap = spillCapForMemory(imageBytes);
  if (spillCap !== undefined) console.log(`background spill capped at ${spillCap} by this machine's free memory (SPOTSNAP_SPILL_LIMIT)`);
  const background = await container(TASK(mib, kind), {
    ...env(1, { SPOTSNAP_CHECKPOINT_INTERVAL: '5s', ...(spillCap === undefined ? {} : { SPOTSNAP_SPILL_LIMIT: spillCap }) }),
    SPOTSNAP_JOB_ID: backgroundJob,
  })
    .withWaitStrategy(Wait.forLogMessage(/^ready/m))
    .start();
  const backgroundFigures = await checkpointFigures(background, await wholeBackgroundCheckpoint(background, imageBytes));
  // What its work dir's memory took to write ahead, before the freeze (the task ran meanwhile).
  const reserved = (await eventLines(background, LogEvent.checkpointSpillReserved)).at(-1);
  console.log('background spill reserved:', JSON.stringify(reserved ?? null));
  await background.stop({ remove: true, timeout: 0 });
  await deletePrefix(client, bucket, `snapshots/${backgroundJob}/`);

  const result: CaseResult = {
    mib,
    kind,
    imageBytes,
    limits: limitsOf(dumpMs, restoreMs, up, down),
    first: { ...firstFigures, totalMs: firstManifest!.timings.totalMs },
    second: { ...secondFigures, totalMs: secondManifest.timings.totalMs },
    restore: { totalMs: restoreTotalMs, agentPeakRssBytes: restoreRss },
    background: backgroundOf(backgroundFigures),
  };
  console.log(spotsnapTimes(result));
  return result;
}
