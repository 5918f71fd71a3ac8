// The events of the agent's log lines, as one table: each line's `event` field names one of them; docs/reference.md's "Log events" is rendered from it.

/** One log event: its name in the `event` field, its key in code, its level, when it is logged and its notable fields (markdown). */
export interface LogEventSpec {
  readonly key: string;
  readonly name: string;
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly description: string;
  /** The fields besides the common ones (level, time, component, jobId, attempt, event, msg), comma-separated; empty where there are none. */
  readonly fields: string;
}

/**
 * Every event, grouped by what it concerns. A name is stable once published: a tool keys on `event`, never on
 * `msg`, which is written for people and may change. Each line of the agent's own log (JSON on stderr) carries one.
 */
export const LOG_EVENTS = [
  // The attempt: how the task runs.
  {
    key: 'attemptStarted',
    name: 'attempt.started',
    level: 'info',
    description: 'spotsnap is on for this attempt; every later line carries `jobId` and `attempt`.',
    fields: 'criu, s3, paths',
  },
  {
    key: 'attemptTransparent',
    name: 'attempt.transparent',
    level: 'debug',
    description: 'The task runs as a plain child, without snapshots; `msg` says why.',
    fields: '',
  },
  {
    key: 'configInvalid',
    name: 'config.invalid',
    level: 'error',
    description: 'The configuration is invalid: the task runs without snapshots. `msg` names each bad variable, its value and what is expected.',
    fields: 'problems',
  },
  { key: 'criuUnusable', name: 'criu.unusable', level: 'error', description: 'CRIU is missing or too old: the task runs without snapshots.', fields: '' },
  {
    key: 'taskNotStarted',
    name: 'task.not-started',
    level: 'error',
    description: '`SPOTSNAP_STRICT=true` and the configuration, CRIU or the PID namespace is unusable: the task was not started (exit 178).',
    fields: '',
  },
  {
    key: 'taskLaunchFailed',
    name: 'task.launch-failed',
    level: 'error',
    description: 'The task could not be started as the init of its own PID namespace: it runs without snapshots.',
    fields: '',
  },
  { key: 'taskNotFound', name: 'task.not-found', level: 'error', description: 'The command was not found (exit 127).', fields: 'command, err' },
  {
    key: 'taskNotExecutable',
    name: 'task.not-executable',
    level: 'error',
    description: 'The command could not be executed (exit 126).',
    fields: 'command, err',
  },
  {
    key: 'taskProcOwn',
    name: 'task.proc-own',
    level: 'debug',
    description: 'The task started from scratch has a `/proc` of its own PID namespace.',
    fields: '',
  },
  {
    key: 'taskProcShared',
    name: 'task.proc-shared',
    level: 'warn',
    description: "The task started from scratch could not get a `/proc` of its own PID namespace: it sees the container's processes.",
    fields: 'proc',
  },
  {
    key: 'taskFreshStart',
    name: 'task.fresh-start',
    level: 'info',
    description: 'There is no snapshot to restore (the first attempt, or the task ended after the last one): the task starts from scratch.',
    fields: 'reasons',
  },
  {
    key: 'taskExited',
    name: 'task.exited',
    level: 'info',
    description: "The task ended on its own; `msg` says how. Its code is the attempt's exit code.",
    fields: 'exitCode',
  },
  {
    key: 'attemptReported',
    name: 'attempt.reported',
    level: 'info',
    description:
      "The attempt's one-line report, logged after it is stored in S3 (or given up on): once on a committed final checkpoint (`report.outcome` `checkpointed`), once when the task ended (`exited`).",
    fields: 'report',
  },
  { key: 'reportStoreFailed', name: 'report.store-failed', level: 'warn', description: "The attempt's report could not be stored in S3.", fields: 'err' },
  {
    key: 'attemptEndRecordFailed',
    name: 'attempt.end-record-failed',
    level: 'warn',
    description: 'That the task ended could not be recorded in S3: a retry may resume a snapshot taken before the end.',
    fields: 'err',
  },
  {
    key: 'attemptEndTimedOut',
    name: 'attempt.end-timed-out',
    level: 'warn',
    description: "Recording the end of the attempt in S3 took too long and was given up; the task's exit code is passed on.",
    fields: 'err',
  },
  {
    key: 'snapshotsDeleted',
    name: 'snapshots.deleted',
    level: 'info',
    description: "The task succeeded: its snapshots' data was deleted (manifests and CRIU logs are kept).",
    fields: 'packs',
  },
  {
    key: 'snapshotsDeleteFailed',
    name: 'snapshots.delete-failed',
    level: 'warn',
    description: "The task succeeded but its snapshots' data could not be deleted (`spotsnap prune` removes it later).",
    fields: 'err',
  },
  // Signals.
  {
    key: 'signalDeferred',
    name: 'signal.deferred',
    level: 'warn',
    description: 'A signal came before the task runs (during a restore): it is passed on once the task runs.',
    fields: 'signal',
  },
  { key: 'signalForwarded', name: 'signal.forwarded', level: 'info', description: 'A signal is passed on to the task.', fields: 'signal' },
  {
    key: 'signalDuringCheckpoint',
    name: 'signal.during-checkpoint',
    level: 'warn',
    description: 'A signal came during a final checkpoint: the agent exits after the commit, or passes the signal on if the checkpoint fails.',
    fields: 'signal',
  },
  {
    key: 'signalAfterCommit',
    name: 'signal.after-commit',
    level: 'info',
    description: 'A signal came after the final checkpoint was committed: the frozen task is killed and the agent exits with 177.',
    fields: 'signal',
  },
  // The spot notice and the instance.
  {
    key: 'noticeReceived',
    name: 'notice.received',
    level: 'warn',
    description: 'A spot interruption notice: the final checkpoint starts (after a background checkpoint under way, if any).',
    fields: 'action, time, msBeforeDeadline',
  },
  {
    key: 'noticeDeferred',
    name: 'notice.deferred',
    level: 'warn',
    description: 'A spot interruption notice came during a background checkpoint: that one finishes first, then `notice.received`.',
    fields: 'action, time',
  },
  {
    key: 'metadataPollFailed',
    name: 'metadata.poll-failed',
    level: 'warn',
    description: 'Polling the metadata service for a notice failed (said once per error); it is polled again.',
    fields: 'failures, err',
  },
  {
    key: 'metadataRecovered',
    name: 'metadata.recovered',
    level: 'info',
    description: 'The metadata service answers again after failures.',
    fields: 'failures',
  },
  {
    key: 'reclaimPollFailed',
    name: 'reclaim.poll-failed',
    level: 'debug',
    description: 'Polling the metadata service failed while the frozen task waits for the reclaim.',
    fields: 'err',
  },
  {
    key: 'taskFrozen',
    name: 'task.frozen',
    level: 'info',
    description: 'The final checkpoint is committed and the task frozen: the agent waits for the instance to be reclaimed (`SPOTSNAP_AFTER_CHECKPOINT=wait`).',
    fields: '',
  },
  {
    key: 'instanceStayed',
    name: 'instance.stayed',
    level: 'warn',
    description: 'The instance was not reclaimed after the notice: the frozen task runs on from where it was.',
    fields: 'reason',
  },
  { key: 'taskResumedInPlace', name: 'task.resumed-in-place', level: 'info', description: 'The frozen task runs again on this instance.', fields: '' },
  {
    key: 'taskKilledFrozen',
    name: 'task.killed-frozen',
    level: 'warn',
    description: 'The frozen task was killed from outside after its checkpoint was committed: the agent exits with 177 for the retry.',
    fields: 'reason',
  },
  // Checkpoints.
  {
    key: 'checkpointStarted',
    name: 'checkpoint.started',
    level: 'info',
    description: "A checkpoint begins: CRIU freezes and dumps the task, its pages stream through the agent's page server to S3.",
    fields: 'snapshotId, checkpoint (final or background), pid, packsInFlight, workers, cores',
  },
  {
    key: 'checkpointSpillReserved',
    name: 'checkpoint.spill-reserved',
    level: 'info',
    description:
      'A background checkpoint on a tmpfs work dir wrote zeros ahead for its page windows, so the kernel allocates their memory before the freeze rather than during it.',
    fields: 'snapshotId, checkpoint, reservedBytes, ms, refused (why the work dir refused it, if it did)',
  },
  {
    key: 'checkpointDumped',
    name: 'checkpoint.dumped',
    level: 'info',
    description: "CRIU's dump is complete; the rest of the images and the task's files upload.",
    fields: 'snapshotId, checkpoint, dumpMs, sentBytes',
  },
  {
    key: 'checkpointThawed',
    name: 'checkpoint.thawed',
    level: 'info',
    description: 'A background checkpoint lets the task run on while its upload goes on.',
    fields: 'snapshotId, checkpoint, frozenMs',
  },
  {
    key: 'checkpointFilesLeftOut',
    name: 'checkpoint.files-left-out',
    level: 'warn',
    description: 'Files that are not regular files, directories or symlinks were left out of the snapshot.',
    fields: 'snapshotId, checkpoint, skipped',
  },
  {
    key: 'checkpointCommitted',
    name: 'checkpoint.committed',
    level: 'info',
    description: 'A checkpoint is committed (its manifest written last): the next attempt can restore it.',
    fields:
      'snapshotId, checkpoint, imageBytes, fileBytes, outside, uploadedBytes, reusedBytes, storedBytes (sent, compressed where that paid), dumpMs, uploadMs, totalMs, frozenMs, msBeforeDeadline, agentMemory, agentCpu, cpuSecondsPerGiB, workers, cores, compression (chunks offered to zstd, kept raw), spill (background: packs that waited on disk), workDirPeakBytes',
  },
  {
    key: 'checkpointAborted',
    name: 'checkpoint.aborted',
    level: 'error',
    description:
      'A checkpoint, final or background, failed before its commit: no snapshot was written. Followed by `checkpoint.failed` or `checkpoint.background-failed`.',
    fields: 'snapshotId, checkpoint, err',
  },
  {
    key: 'checkpointFailed',
    name: 'checkpoint.failed',
    level: 'error',
    description: 'The final checkpoint failed: the task runs on (`task.continued`), or its exit is passed on.',
    fields: 'err',
  },
  {
    key: 'checkpointBackgroundFailed',
    name: 'checkpoint.background-failed',
    level: 'warn',
    description: 'A background checkpoint failed: the task runs on.',
    fields: 'err',
  },
  {
    key: 'taskContinued',
    name: 'task.continued',
    level: 'warn',
    description: 'After a failed final checkpoint the task runs on without one, as it would without spotsnap.',
    fields: '',
  },
  {
    key: 'checkpointBackgroundOff',
    name: 'checkpoint.background-off',
    level: 'info',
    description: 'With `SPOTSNAP_CHECKPOINT_INTERVAL=auto`, the task holds more than 8 GiB: no background checkpoints (said once).',
    fields: 'residentBytes',
  },
  {
    key: 'checkpointDirtyTracking',
    name: 'checkpoint.dirty-tracking',
    level: 'info',
    description: 'Whether the kernel tracks dirty memory, asked once when the first background checkpoint is due.',
    fields: 'memDirtyTrack, interval',
  },
  // Restores.
  {
    key: 'restoreStarted',
    name: 'restore.started',
    level: 'info',
    description:
      "A snapshot is downloaded and verified, chunk by chunk. With `streamedBytes` above 0, the memory images are not downloaded first: they stream from S3 into CRIU's restore (each chunk verified before a byte of it is passed on), and `streamed` says why not when they do not.",
    fields: 'snapshotId, imageBytes, fileBytes, outsideBytes, readsInFlight, streamedBytes, streamed',
  },
  {
    key: 'restoreDownloaded',
    name: 'restore.downloaded',
    level: 'info',
    description:
      "The snapshot's small images are verified and the task's files are back: CRIU restores the process tree (reading the memory images as they stream, when they do).",
    fields: 'snapshotId, files, outsideFiles, downloadMs',
  },
  {
    key: 'restoreStreamed',
    name: 'restore.streamed',
    level: 'info',
    description:
      'CRIU restored the tree from images it read through the stream: how many and their bytes, when it first asked for memory pages and when the last of them was in its pipe (ms after the stream server started, just before CRIU), and any it did not read to the end (it reads what it needs).',
    fields: 'snapshotId, images, bytes, pagesAskedMs, pagesEndedMs, unfinished',
  },
  {
    key: 'restoreStreamFellBack',
    name: 'restore.stream-fell-back',
    level: 'warn',
    description:
      "The image relay of a streamed restore did not start, or failed while CRIU read through it (not the snapshot's fault): the same snapshot is restored with its memory images downloaded into the work dir first, and no later restore of this attempt streams.",
    fields: 'snapshotId, err',
  },
  {
    key: 'restoreSnapshotFailed',
    name: 'restore.snapshot-failed',
    level: 'warn',
    description: 'A snapshot could not be restored (what was restored of it is undone): the one before is tried.',
    fields: 'snapshotId, err',
  },
  {
    key: 'restoreCleanupFailed',
    name: 'restore.cleanup-failed',
    level: 'warn',
    description: 'The staging directory of a restore could not be removed.',
    fields: 'snapshotId, err',
  },
  {
    key: 'restoreTaskEnded',
    name: 'restore.task-ended',
    level: 'info',
    description: 'The restored task finished on its own right after its restore.',
    fields: 'snapshotId, exitCode',
  },
  {
    key: 'restoreDone',
    name: 'restore.done',
    level: 'info',
    description: 'The task was restored and runs from where its snapshot was taken.',
    fields: 'snapshotId, fromAttempt, restoreMs, downloadMs, criuRestoreMs, runningAt, agentMemory, agentCpuSinceStart',
  },
  {
    key: 'restoreFellBack',
    name: 'restore.fell-back',
    level: 'info',
    description: 'There were snapshots (or they could not be looked up), but none could be restored: the task starts from scratch.',
    fields: 'reasons',
  },
  {
    key: 'restoreFailed',
    name: 'restore.failed',
    level: 'error',
    description: 'No snapshot could be restored and `SPOTSNAP_ON_RESTORE_FAILURE=fail`: the task was not started (exit 176).',
    fields: 'reasons',
  },
  // Transfers: a checkpoint's upload, a restore's download.
  {
    key: 'transferProgress',
    name: 'transfer.progress',
    level: 'info',
    description: 'How far a transfer is, every few seconds (when stderr is not a terminal).',
    fields: 'bytes, totalBytes, mibPerSecond, elapsedMs, msBeforeDeadline',
  },
  {
    key: 'transferEstimate',
    name: 'transfer.estimate',
    level: 'info',
    description: "When a checkpoint's upload should be done at the rate so far.",
    fields: 'remainingBytes, mibPerSecond, etaMs, msBeforeDeadline',
  },
  {
    key: 'transferLate',
    name: 'transfer.late',
    level: 'warn',
    description:
      "A checkpoint may not finish before the notice's deadline (it commits only if every byte arrives): said before the dump from the job's last checkpoint's rate, and after it from this one's.",
    fields: 'remainingBytes or expectedMs, mibPerSecond, etaMs, msBeforeDeadline',
  },
  // The credentials relay (agent/task/credentials-relay.ts).
  {
    key: 'credentialsRelayListening',
    name: 'credentials.relay-listening',
    level: 'info',
    description: 'The credentials relay serves the task on 127.0.0.1.',
    fields: 'port, upstream, reused',
  },
  {
    key: 'credentialsRelayNotStarted',
    name: 'credentials.relay-not-started',
    level: 'warn',
    description: 'The credentials relay could not start: the task reads its credentials as the container gives them.',
    fields: 'err or error',
  },
  {
    key: 'credentialsFetched',
    name: 'credentials.fetched',
    level: 'info',
    description: 'The relay got new container credentials.',
    fields: 'upstream, expiresAt',
  },
  {
    key: 'credentialsStaleServed',
    name: 'credentials.stale-served',
    level: 'warn',
    description: 'Refreshing the credentials failed: the cached ones, still valid, are served.',
    fields: 'error',
  },
  {
    key: 'credentialsUpstreamFailed',
    name: 'credentials.upstream-failed',
    level: 'warn',
    description: 'The agent could not get its container credentials for the task.',
    fields: 'upstream, status, error',
  },
  { key: 'credentialsRelayError', name: 'credentials.relay-error', level: 'error', description: 'The relay failed to answer a request.', fields: 'err' },
  {
    key: 'credentialsRelayServerError',
    name: 'credentials.relay-server-error',
    level: 'warn',
    description: "The relay's server reported an error.",
    fields: 'err',
  },
] as const satisfies readonly LogEventSpec[];

type LogEventRow = (typeof LOG_EVENTS)[number];

/** An event's name, as the `event` field of a log line carries it. */
export type LogEventName = LogEventRow['name'];

/** The names of LOG_EVENTS by key: `LogEvent.restoreDone` is `'restore.done'`. */
export const LogEvent = Object.fromEntries(LOG_EVENTS.map((row) => [row.key, row.name])) as {
  readonly [Row in LogEventRow as Row['key']]: Row['name'];
};
