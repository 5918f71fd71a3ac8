// One task of the host benchmark: the same figures as bench-case.ts, with the bundle's agent, CRIU and tools run on the host itself (no Docker, no Node but the bundle's).
import { closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { baselineDumpArgs, baselineRestoreArgs } from '../../criu-bridge/criu-options.ts';
import { childPids } from '../../agent/task/process-tree.ts';
import type { ImdsSimulator } from '../../localstack/imds-simulator.ts';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { agentLog, committedCheckpoints, eventLine, type AgentLine } from '../support/agent-log.ts';
import { jobEnv } from '../support/job-env.ts';
import { measurePlainDownload, measurePlainUpload } from './bench-limits.ts';
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
import { killTree, LoggedProcess, peakRssOf, timedRun, track, waitForFileText } from './host-processes.ts';

export interface HostTarget {
  /** The unpacked bundle (its wrappers name /opt/spotsnap, so it must be there). */
  bundle: string;
  /** The python3 that runs the bench task. */
  python: string;
  s3Endpoint: string;
  /** The stand-in's directory of buckets (objects are files there), to create and empty a bucket. */
  s3Dir: string;
  imds: ImdsSimulator;
  /** A tmpfs directory for images, work dirs and the tasks' own directories. */
  scratchDir: string;
  /** Where each attempt's output (the agent's log and the task's) is kept, a file per attempt. */
  logDir: string;
}

export const WAIT_MS = 1_800_000;

/** The bench task's command line (docker/sample-tasks/bench-task.py, as the bundle carries it). */
const taskCommand = (t: HostTarget, mib: number, kind: MemoryKind) => [t.python, path.join(t.bundle, 'samples/bench-task.py'), String(mib), kind];

/**
 * Writes `mib` MiB (and a little more) into tmpfs and frees it again, as bench-case.ts does before each plain
 * limit. The run's tmpfs is sized for it, so a failure is a fault of the run, not a slower limit to report.
 */
async function warmMemory(dir: string, mib: number): Promise<void> {
  const file = path.join(dir, 'warm');
  try {
    await timedRun('sh', ['-c', `head -c ${mib + 64}M /dev/zero > '${file}'`], dir);
  } finally {
    await rm(file, { force: true });
  }
}

/** Starts the bench task as the agent starts a task (init of its own PID namespace, session leader), its output to `log`; returns the namespace init's PID once its memory is filled. */
async function startPlainTask(t: HostTarget, dir: string, mib: number, kind: MemoryKind): Promise<{ unshare: LoggedProcess; pid: number }> {
  const log = path.join(dir, 'task.log');
  const out = openSync(log, 'w');
  const bin = path.join(t.bundle, 'bin');
  // The task's output goes to a file, as in the container benchmark: CRIU dumps an open file, not a pipe to this process.
  const unshare = new LoggedProcess(
    'sh',
    ['-c', `exec ${bin}/unshare --pid --fork ${bin}/setsid "$@" </dev/null >&3 2>&3 3>&-`, 'sh', ...taskCommand(t, mib, kind)],
    {
      cwd: dir,
      env: process.env,
      fd3: out,
    },
  );
  closeSync(out);
  await waitForFileText(log, /^ready/m, unshare, WAIT_MS);
  const [pid] = childPids(unshare.pid);
  if (pid === undefined) throw new Error(`bench: the plain task under unshare (PID ${unshare.pid}) has no process`);
  return { unshare, pid };
}

/** Times a plain restore of `images` (detached), then kills what it restored. */
async function plainRestore(t: HostTarget, images: string, dir: string, mib: number): Promise<number> {
  await warmMemory(t.scratchDir, mib);
  const pidFile = path.join(dir, 'restored.pid');
  await rm(pidFile, { force: true });
  const ms = await timedRun(path.join(t.bundle, 'bin/criu'), [...baselineRestoreArgs(images, 'restore.log'), '--pidfile', pidFile], dir).catch(
    (error: Error) => {
      const log = existsSync(path.join(images, 'restore.log')) ? readFileSync(path.join(images, 'restore.log'), 'utf8') : '(no restore.log)';
      throw new Error(`${error.message}\n${log.split('\n').slice(-20).join('\n')}`);
    },
  );
  const restored = Number(readFileSync(pidFile, 'utf8').trim());
  track(restored);
  await killTree(restored);
  return ms;
}

/**
 * One attempt of a job: `spotsnap run -- TASK` from the bundle, in the job's own directory, in a mount namespace
 * of its own with empty /tmp, /var/tmp and /dev/shm, as a new container has. The agent takes along what a task
 * changed there (agent/task/outside-files.ts) and puts it back at a restore: on the host's own, it would take
 * this benchmark's files too, and put old copies of them back.
 */
export function attempt(t: HostTarget, jobDir: string, mib: number, kind: MemoryKind, env: Record<string, string>): LoggedProcess {
  const freshScratch = 'for d in /tmp /var/tmp /dev/shm; do mount -t tmpfs -o size=1g,mode=1777 spotsnap-attempt "$d" || exit 1; done; exec "$@"';
  return new LoggedProcess(
    path.join(t.bundle, 'bin/unshare'),
    ['--mount', '--propagation', 'private', 'sh', '-c', freshScratch, 'sh', path.join(t.bundle, 'bin/spotsnap'), 'run', '--', ...taskCommand(t, mib, kind)],
    {
      cwd: jobDir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
      logFile: path.join(t.logDir, `${env.AWS_BATCH_JOB_ID}-attempt-${env.AWS_BATCH_JOB_ATTEMPT}.log`),
    },
  );
}

/** A committed checkpoint's figures from its log line, with the agent's peak RSS so far. */
function figures(agent: LoggedProcess, line: AgentLine | undefined): Checkpoint & { frozenMs: number } {
  if (!line) throw new Error(`bench: no committed checkpoint in the agent's log:\n${agent.tail()}`);
  console.log(`${String(line.checkpoint)} checkpoint:`, JSON.stringify(line));
  return checkpointFromLog(line, peakRssOf(agent.pid));
}

/** Gives the attempt of `agent` a notice, waits for its final checkpoint to commit and ends it: that checkpoint's log line and figures. */
export async function checkpointAtNotice(t: HostTarget, agent: LoggedProcess): Promise<{ line: AgentLine; figures: Checkpoint & { frozenMs: number } }> {
  t.imds.scheduleNotice(0);
  await agent.waitFor(eventLine(LogEvent.checkpointCommitted), WAIT_MS);
  const line = committedCheckpoints(agent.stderrLines, 'final')[0];
  // Its peak RSS is read while it still runs.
  const checkpoint = figures(agent, line);
  t.imds.clearNotice();
  await killTree(agent.pid);
  return { line: line!, figures: checkpoint };
}

/** Where one case of the host benchmark works: its id, its bucket and the bucket's directory, and its scratch directory. */
export interface CasePlace {
  id: string;
  bucket: string;
  bucketDir: string;
  caseDir: string;
}

/** Makes the bucket and the scratch directory of the case of `mib` MiB of `kind` memory. */
export async function makeCasePlace(mib: number, kind: MemoryKind, t: HostTarget): Promise<CasePlace> {
  const id = `${mib}-${kind}-${process.pid}`;
  const bucket = `host-bench-${id}`;
  const bucketDir = path.join(t.s3Dir, bucket);
  await mkdir(bucketDir, { recursive: true });
  const caseDir = path.join(t.scratchDir, id);
  await mkdir(caseDir, { recursive: true });
  return { id, bucket, bucketDir, caseDir };
}

/** Measures a task of `mib` MiB of `kind` memory on the host, against the stand-in of `t`. */
export async function hostBenchCase(mib: number, kind: MemoryKind, t: HostTarget): Promise<CaseResult> {
  const { id, bucket, bucketDir, caseDir } = await makeCasePlace(mib, kind, t);
  const plainDir = path.join(caseDir, 'plain');
  await mkdir(plainDir, { recursive: true });
  console.log(`\n== ${mib} MiB, ${kind} memory, on the host`);
  const criu = path.join(t.bundle, 'bin/criu');

  // 1. Plain dump to tmpfs, the faster of two (the first leaves the task running), each after memory of the
  // task's size was written and freed; then the faster of two plain restores of the last one.
  const plain = await startPlainTask(t, plainDir, mib, kind);
  const trial = path.join(caseDir, 'trial-images');
  const images = path.join(caseDir, 'images');
  await mkdir(trial);
  await mkdir(images);
  await warmMemory(t.scratchDir, mib);
  const trialDumpMs = await timedRun(criu, [...baselineDumpArgs(plain.pid, trial, 'dump.log'), '--leave-running'], plainDir);
  await rm(trial, { recursive: true });
  await warmMemory(t.scratchDir, mib);
  const lastDumpMs = await timedRun(criu, baselineDumpArgs(plain.pid, images, 'dump.log'), plainDir);
  // CRIU killed the tree once dumped; unshare ends with it (and once reaped, its PID is no longer its own).
  if (plain.unshare.exit === undefined) await killTree(plain.unshare.pid);
  const dumpMs = Math.min(trialDumpMs, lastDumpMs);
  const firstRestoreMs = await plainRestore(t, images, plainDir, mib);
  const lastRestoreMs = await plainRestore(t, images, plainDir, mib);
  const restoreMs = Math.min(firstRestoreMs, lastRestoreMs);
  // The plain upload sends the images where the dump wrote them, one after the other (no copy of them first).
  const imageFiles = (await readdir(images))
    .filter((name) => name.endsWith('.img'))
    .sort()
    .map((name) => path.join(images, name));
  const imageBytes = imageFiles.reduce((sum, file) => sum + statSync(file).size, 0);
  console.log(
    `plain dump ${dumpMs} ms (of ${trialDumpMs} and ${lastDumpMs}), plain restore ${restoreMs} ms (of ${firstRestoreMs} and ${lastRestoreMs}), ${(imageBytes / 1048576).toFixed(0)} MiB of images`,
  );

  // 2. Plain upload and download of as many bytes, at their fastest in-flight counts; the upload into memory
  // just written and freed, as each limit before it (the stand-in writes its objects to tmpfs).
  await warmMemory(t.scratchDir, mib);
  const up = await measurePlainUpload(t.s3Endpoint, bucket, imageFiles, { prefix: 'plain/' });
  const down = await measurePlainDownload(t.s3Endpoint, bucket, imageFiles, { prefix: 'plain/' });
  await rm(images, { recursive: true });
  await emptyBucket(bucketDir);
  console.log(
    `plain upload ${(up.seconds * 1000).toFixed(0)} ms (${up.inFlight} in flight), plain download ${(down.seconds * 1000).toFixed(0)} ms (${down.inFlight} in flight)`,
  );

  // 3. spotsnap: the first checkpoint at a notice, the restore as attempt 2, 10% of memory changed, the second.
  const jobId = `host-bench-${id}`;
  const jobDir = path.join(caseDir, 'job');
  await mkdir(jobDir);
  const env = (n: number, job = jobId, extra: Record<string, string> = {}) => ({
    ...jobEnv({ s3Endpoint: t.s3Endpoint, imdsUrl: t.imds.url, bucket, jobId: job, attempt: n }),
    SPOTSNAP_WORK_DIR: path.join(caseDir, `work-${job}-${n}`),
    SPOTSNAP_CHECKPOINT_INTERVAL: 'off',
    ...extra,
    ...experimentEnv(),
  });
  const first = attempt(t, jobDir, mib, kind, env(1));
  await first.waitFor(/^ready/m, WAIT_MS);
  const firstFigures = (await checkpointAtNotice(t, first)).figures;

  const second = attempt(t, jobDir, mib, kind, env(2));
  await second.waitFor(eventLine(LogEvent.restoreDone), WAIT_MS);
  const restored = agentLog(second.stderrLines).find((l) => l.event === LogEvent.restoreDone)!;
  // Until the restored task runs again (restore.done itself comes a confirmation later).
  const restoreTotalMs = Date.parse(String(restored.runningAt)) - second.startedAt;
  if (Number.isNaN(restoreTotalMs)) throw new Error(`restore.done has no runningAt time: ${JSON.stringify(restored)}`);
  const restoreRss = peakRssOf(second.pid);
  console.log('restore:', JSON.stringify(restored));
  await writeFile(path.join(jobDir, 'change-now'), '');
  await second.waitFor(/changed 10%/, WAIT_MS);
  const secondFigures = (await checkpointAtNotice(t, second)).figures;
  await emptyBucket(bucketDir);

  // 4. A background checkpoint of a fresh task: how long it keeps the task frozen.
  const backgroundDir = path.join(caseDir, 'background');
  await mkdir(backgroundDir);
  const background = attempt(t, backgroundDir, mib, kind, env(1, `${jobId}-bg`, { SPOTSNAP_CHECKPOINT_INTERVAL: '5s' }));
  // The first background checkpoint may catch the task still filling its memory: wait for one of the whole task.
  const whole = (): AgentLine | undefined => wholeTaskCheckpoint(committedCheckpoints(background.stderrLines, 'background'), imageBytes);
  await background.waitUntil(() => whole() !== undefined, 'a background checkpoint of the whole task', WAIT_MS);
  const backgroundFigures = figures(background, whole());
  const reserved = agentLog(background.stderrLines)
    .filter((l) => l.event === LogEvent.checkpointSpillReserved)
    .at(-1);
  console.log('background spill reserved:', JSON.stringify(reserved ?? null));
  await killTree(background.pid);
  await emptyBucket(bucketDir);
  await rm(caseDir, { recursive: true, force: true });

  const result: CaseResult = {
    mib,
    kind,
    imageBytes,
    limits: limitsOf(dumpMs, restoreMs, up, down),
    first: firstFigures,
    second: secondFigures,
    restore: { totalMs: restoreTotalMs, agentPeakRssBytes: restoreRss },
    background: backgroundOf(backgroundFigures),
  };
  console.log(spotsnapTimes(result));
  return result;
}

/** Deletes every object of a bucket of the stand-in (its files), keeping the bucket. */
export async function emptyBucket(bucketDir: string): Promise<void> {
  await rm(bucketDir, { recursive: true, force: true });
  await mkdir(bucketDir);
}
