// `spotsnap run -- CMD`: decides how the task runs (transparent, restored or fresh) and returns the exit code.
import type { Logger } from 'pino';
import { CriuCli, type CriuVersion } from '../../criu-bridge/criu-cli.ts';
import { takeCheckpoint } from '../checkpoint/checkpoint.ts';
import { sharedChunkWorkers } from '../transfer/chunk-workers.ts';
import { workerCount } from '../transfer/worker-count.ts';
import { systemClock, type Clock } from '../shared/clock.ts';
import { readConfig, type AgentConfig } from '../config/config.ts';
import { ExitCode } from '../shared/exit-codes.ts';
import { ImdsClient } from '../notice/imds-client.ts';
import { LogEvent } from '../shared/log-events.ts';
import { createLogger } from '../shared/logger.ts';
import { buildReport, summaryLine, type AttemptRecord } from './attempt-report.ts';
import { chunkRefs } from '../store/manifest.ts';
import type { KnownChunks } from '../transfer/chunk-uploader.ts';
import { restoreNewestSnapshot, type RestoreOutcome } from '../restore/restore.ts';
import { cpuFigures, memoryFigures } from '../shared/resource-figures.ts';
import { collectAllGarbage } from '../shared/garbage-collection.ts';
import { createS3Client, SnapshotStore } from '../store/snapshot-store.ts';
import { decideMode } from './run-mode.ts';
import { onForwardedSignals } from '../task/forwarded-signals.ts';
import { supervise } from './supervisor.ts';
import { ATTEMPT_END_BUDGET_MS } from '../shared/limits.ts';
import { withDeadline } from '../shared/with-deadline.ts';
import { TaskCredentials } from './task-credentials.ts';
import { taskEnvironment } from '../task/task-environment.ts';
import { launchTask } from '../task/task-launch.ts';
import type { TaskProcess } from '../task/task-process.ts';
import { runTransparently } from './transparent-run.ts';
import { CompressionPace } from '../transfer/compression-pace.ts';

/** What the end of an attempt needs of the job's store (agent/store/snapshot-store.ts): its report, its end, and cleaning up. */
export type AttemptStore = Pick<SnapshotStore, 'putReport' | 'markEnded' | 'markFinished' | 'deleteAllPacks'>;

export async function runCommand(command: readonly string[], env: NodeJS.ProcessEnv, cwd: string, clock: Clock = systemClock): Promise<number> {
  const result = readConfig(env, cwd);
  const log = createLogger(result.kind === 'enabled' ? result.config.logLevel : result.logLevel);
  const mode = await decideMode(result, log);
  if (mode.kind === 'refuse') {
    log.error({ event: LogEvent.taskNotStarted }, mode.why);
    return mode.exitCode;
  }
  if (mode.kind === 'transparent') {
    log.debug({ event: LogEvent.attemptTransparent }, mode.why);
    return runTransparently(command, log);
  }
  const credentials = new TaskCredentials(env, log);
  try {
    return await runWithSnapshots(command, env, cwd, mode.config, mode.criuVersion, clock, log, credentials);
  } finally {
    await credentials.close();
  }
}

async function runWithSnapshots(
  command: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  config: AgentConfig,
  criuVersion: CriuVersion,
  clock: Clock,
  log: Logger,
  credentials: TaskCredentials,
): Promise<number> {
  const criu = new CriuCli(config.criuPath);
  const store = new SnapshotStore(createS3Client(env), config.s3, config.jobId, config.encryption);
  const jlog = log.child({ jobId: config.jobId, attempt: config.attempt });
  jlog.info(
    { event: LogEvent.attemptStarted, criu: criuVersion.text, s3: `s3://${config.s3.bucket}/${config.s3.prefix}`, paths: config.paths },
    'spotsnap enabled',
  );
  // A signal during the restore (docker stop) is kept for the task, which gets it as soon as it runs.
  const earlySignals: NodeJS.Signals[] = [];
  const removeEarlySignalHandlers = onForwardedSignals((signal) => {
    jlog.warn({ event: LogEvent.signalDeferred, signal }, 'signal received before the task runs: it is passed on once the task runs');
    earlySignals.push(signal);
  });
  let outcome: RestoreOutcome;
  let lookupFailed = false;
  try {
    // The restore's workers are the attempt's: as many as SPOTSNAP_WORKERS says, not the default pool's. They
    // start now, loading their module while the snapshots are looked up, not when the first chunk needs them.
    sharedChunkWorkers(workerCount(config.workers)).warm();
    outcome = await restoreNewestSnapshot({ config, criu, store, command, clock, log: jlog, beforeCriu: (manifest) => credentials.serveFor(manifest) });
  } catch (error) {
    lookupFailed = true;
    outcome = { kind: 'none', reasons: [`could not look up snapshots: ${error instanceof Error ? error.message : String(error)}`], hadSnapshots: false };
  }

  let task: TaskProcess;
  const knownChunks: KnownChunks = new Map();
  const attemptStarted = clock.now();
  const record: AttemptRecord = { checkpoints: [] };
  // One for the attempt: each checkpoint judges compression from the rates the ones before it measured.
  const compressionPace = new CompressionPace();
  if (outcome.kind === 'restored') {
    for (const ref of chunkRefs(outcome.manifest)) knownChunks.set(ref.digest, ref);
    record.latest = outcome.manifest;
    record.restore = {
      snapshotId: outcome.manifest.snapshotId,
      fromAttempt: outcome.manifest.attempt,
      totalMs: outcome.restoreMs,
      downloadMs: outcome.downloadMs,
      criuRestoreMs: outcome.criuRestoreMs,
      preservedRunMs: outcome.manifest.task.runMs,
      preservedCpuMs: outcome.manifest.task.cpuMs,
    };
    jlog.info(
      {
        event: LogEvent.restoreDone,
        snapshotId: outcome.manifest.snapshotId,
        fromAttempt: outcome.manifest.attempt,
        restoreMs: outcome.restoreMs,
        downloadMs: outcome.downloadMs,
        criuRestoreMs: outcome.criuRestoreMs,
        // The task ran from this moment; this line comes RESTORE_CONFIRM_MS later, once it proved it runs.
        runningAt: new Date(outcome.runningAt).toISOString(),
        agentMemory: memoryFigures(),
        agentCpuSinceStart: cpuFigures(),
      },
      'task restored from snapshot',
    );
    task = outcome.task;
    task.credentialsRelay = outcome.manifest.credentialsRelay ?? undefined;
  } else {
    if (outcome.hadSnapshots && config.onRestoreFailure === 'fail') {
      removeEarlySignalHandlers();
      jlog.error({ event: LogEvent.restoreFailed, reasons: outcome.reasons }, 'no snapshot could be restored; SPOTSNAP_ON_RESTORE_FAILURE=fail');
      return ExitCode.restoreFailed;
    }
    // Snapshots there were (or they could not be looked up), but none runs here: a fall-back, not a first start.
    const fellBack = outcome.hadSnapshots || lookupFailed;
    jlog.info({ event: fellBack ? LogEvent.restoreFellBack : LogEvent.taskFreshStart, reasons: outcome.reasons }, 'starting the task from scratch');
    try {
      const relay = await credentials.forFreshStart();
      const taskEnv = relay ? relay.taskEnv(taskEnvironment(env)) : taskEnvironment(env);
      task = await launchTask(command, {
        clock,
        cwd,
        env: taskEnv,
        onProcOutcome: (proc) => {
          if (proc === 'own') jlog.debug({ event: LogEvent.taskProcOwn }, 'the task has a /proc of its own PID namespace');
          else
            jlog.warn(
              { event: LogEvent.taskProcShared, proc },
              "the task could not get a /proc of its own PID namespace: /proc shows the container's processes (psutil, ps -p $$ and the like will see other PIDs)",
            );
        },
      });
      task.credentialsRelay = relay ? { port: relay.port, token: relay.token } : undefined;
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      removeEarlySignalHandlers();
      if (config.strict) {
        jlog.error({ event: LogEvent.taskNotStarted }, `${why}; SPOTSNAP_STRICT=true, so the task is not started`);
        return ExitCode.configInvalid;
      }
      jlog.error({ event: LogEvent.taskLaunchFailed }, `${why}; the task runs without snapshots`);
      return runTransparently(command, jlog);
    }
  }

  removeEarlySignalHandlers();
  // The chunk workers start while the task runs: a notice's two minutes are not spent loading them.
  sharedChunkWorkers(workerCount(config.workers)).warm();
  // The agent's start, and a restore's manifest, plans and connections, are garbage now (garbage-collection.ts).
  collectAllGarbage();
  const notices = new ImdsClient({ endpoint: config.imdsEndpoint, clock });
  const report = async (outcomeKind: 'exited' | 'checkpointed', exitCode: number, usage: { runMs: number; cpuMs: number }): Promise<void> => {
    const built = buildReport(config, record, { outcome: outcomeKind, exitCode, usage, attemptMs: clock.now() - attemptStarted }, new Date(clock.now()));
    // Stored first, then logged: once the summary line is out, the report is in S3 too. A silent S3 must not
    // keep the task's exit code from being passed on: the report has a time limit.
    await withDeadline(store.putReport(config.attempt, built), ATTEMPT_END_BUDGET_MS, 'storing the attempt report').catch((error: unknown) =>
      jlog.warn({ event: LogEvent.reportStoreFailed, err: String(error) }, 'could not store the attempt report'),
    );
    jlog.info({ event: LogEvent.attemptReported, report: built }, summaryLine(built));
  };
  const onFinalCheckpoint = () => report('checkpointed', ExitCode.checkpointedForRetry, { runMs: record.latest!.task.runMs, cpuMs: record.latest!.task.cpuMs });
  const supervised = task;
  const result = await supervise(
    {
      config,
      task,
      notices,
      checkpoint: (kind, notice) =>
        takeCheckpoint({ config, criu, criuVersion, store, task: supervised, command, knownChunks, record, compressionPace, clock, log: jlog }, kind, notice),
      dirtyTracking: () => criu.hasFeature('mem_dirty_track'),
      onFinalCheckpoint,
      clock,
      log: jlog,
    },
    earlySignals,
  );
  if (result.kind !== 'task-exited') return result.exitCode;
  jlog.info({ event: LogEvent.taskExited, exitCode: result.exit.code }, result.exit.reason);
  // A silent S3 must not keep the task's exit code from being passed on: all of this shares one time limit.
  const recordTheEnd = async (): Promise<void> => {
    // Whatever its code, the task ended: a retry must not resume it from a snapshot taken before that.
    await store
      .markEnded({ attempt: config.attempt, exitCode: result.exit.code, endedAt: new Date(clock.now()).toISOString() })
      .catch((error: unknown) =>
        jlog.warn(
          { event: LogEvent.attemptEndRecordFailed, err: String(error) },
          'could not record that the task ended (a retry may resume a snapshot taken before the end)',
        ),
      );
    await report('exited', result.exit.code, task.usage());
    if (result.exit.code === 0) await deleteImagesOfFinishedJob(store, jlog, config.attempt, clock);
  };
  await withDeadline(recordTheEnd(), ATTEMPT_END_BUDGET_MS, 'recording the end of the attempt in S3').catch((error: unknown) =>
    jlog.warn({ event: LogEvent.attemptEndTimedOut, err: String(error) }, "gave up recording the end of the attempt; the task's exit code is passed on"),
  );
  return result.exit.code;
}

/** After a successful task its snapshots' data is no use; manifests and CRIU logs stay as a record. */
async function deleteImagesOfFinishedJob(store: AttemptStore, log: Logger, attempt: number, clock: Clock): Promise<void> {
  try {
    await store.markFinished({ attempt, exitCode: 0, finishedAt: new Date(clock.now()).toISOString() });
    const packs = await store.deleteAllPacks();
    if (packs > 0) log.info({ event: LogEvent.snapshotsDeleted, packs }, 'task succeeded: deleted its snapshot data (manifests and logs kept)');
  } catch (error) {
    log.warn(
      { event: LogEvent.snapshotsDeleteFailed, err: error instanceof Error ? error.message : String(error) },
      "could not delete the finished job's snapshot images",
    );
  }
}
