// The environment variables the agent reads, as one table: name, default, parser, expected form and description (docs/reference.md is rendered from it).
import type { AfterCheckpoint, CheckpointInterval, LogLevel, OnRestoreFailure, S3Location, TcpMode } from './config-types.ts';
import * as parse from './env-var-parsers.ts';

/** One environment variable: how it is read, what an unset one means, and how it is documented. */
export interface EnvVarSpec<T, D extends T | undefined = T | undefined> {
  readonly name: string;
  /** The default as the reference shows it (markdown). */
  readonly defaultText: string;
  /** The value when unset or blank; undefined where there is none (required, optional, or derived from other settings). */
  readonly defaultValue: D;
  /** Reads a value that is set; undefined when it is not of the expected form. */
  readonly parse: parse.ValueParser<T>;
  /** Whether it must be set (when spotsnap is enabled). */
  readonly required: boolean;
  /** What a bad value should be: the text after "expected" in the error message. */
  readonly expected: string;
  /** What it does (markdown), for the reference. */
  readonly description: string;
}

type Fields<T> = Pick<EnvVarSpec<T>, 'name' | 'parse' | 'expected' | 'description'> & { required?: boolean };

/** A variable whose default is a value of its own form: documented as that text and parsed from it, so the two agree. */
function withDefault<T>(literal: string, fields: Fields<T>): EnvVarSpec<T, T> {
  return { required: false, ...fields, defaultText: `\`${literal}\``, defaultValue: fields.parse(literal) as T };
}

/** A variable whose default is a value documented in words. */
function withValue<T>(defaultText: string, defaultValue: T, fields: Fields<T>): EnvVarSpec<T, T> {
  return { required: false, ...fields, defaultText, defaultValue };
}

/** A variable without a default value: `defaultText` says what being unset means. */
function withoutDefault<T>(defaultText: string, fields: Fields<T>): EnvVarSpec<T, undefined> {
  return { required: false, ...fields, defaultText, defaultValue: undefined };
}

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const JOB_ID_FORM = 'letters, digits and . _ : - (at most 255 characters)';
const BATCH_JOB_ID = 'AWS_BATCH_JOB_ID';

/** Every variable the agent reads, in the order the reference lists them. */
export const ENV_VARS = {
  enabled: withDefault('false', {
    name: 'SPOTSNAP_ENABLED',
    parse: parse.parseBoolean,
    expected: 'true or false (unset means false)',
    description: '`true` turns snapshots on for this task; otherwise the agent is a transparent wrapper.',
  }),
  s3Uri: withoutDefault<S3Location>('(required when enabled)', {
    name: 'SPOTSNAP_S3_URI',
    parse: (raw) => parse.parseS3Uri(raw.trim()),
    required: true,
    expected: 's3://BUCKET/PREFIX (a valid bucket name, required when spotsnap is enabled)',
    description: "`s3://BUCKET/PREFIX` where the job's snapshots go.",
  }),
  jobId: withoutDefault(`\`${BATCH_JOB_ID}\``, {
    name: 'SPOTSNAP_JOB_ID',
    parse: parse.jobId,
    expected: JOB_ID_FORM,
    description:
      "The job's identity: snapshots of one job are never restored into another. Letters, digits, `. _ : -`, at most 255 characters. For a child of an array job, `:INDEX` is appended to it (unless it already ends with it), so siblings never share snapshots.",
  }),
  batchJobId: withoutDefault('set by AWS Batch', {
    name: BATCH_JOB_ID,
    parse: parse.text,
    expected: JOB_ID_FORM,
    description:
      'Used when `SPOTSNAP_JOB_ID` is unset; recorded in the manifest, and a snapshot of another Batch job is never restored (so an explicit `SPOTSNAP_JOB_ID` resumes only within one Batch job).',
  }),
  batchArrayIndex: withoutDefault('set by AWS Batch', {
    name: 'AWS_BATCH_JOB_ARRAY_INDEX',
    parse: parse.wholeNumber,
    expected: 'a whole number >= 0',
    description:
      'Appended as `:INDEX` to the job id (`SPOTSNAP_JOB_ID` or `AWS_BATCH_JOB_ID`) of an array child; recorded in the manifest and checked at restore.',
  }),
  batchAttempt: withDefault('1', {
    name: 'AWS_BATCH_JOB_ATTEMPT',
    parse: parse.attemptNumber,
    expected: 'a whole number >= 1',
    description: 'The attempt number, recorded in snapshot ids. A committed snapshot taken after the task last ended is looked for on every attempt.',
  }),
  paths: withoutDefault<string[]>('the working directory', {
    name: 'SPOTSNAP_PATHS',
    // Read with the working directory and the disk in hand: state-paths.ts.
    parse: (raw) =>
      raw
        .split(':')
        .map((p) => p.trim())
        .filter(Boolean),
    expected: 'absolute directories other than "/", separated by ":" (default: the working directory)',
    description:
      "Absolute directories whose files are part of the task's state, separated by `:`. Not `/` (nor a path that resolves to it). Symlinks in them are resolved once, as far as the path exists: with `/scratch -> /mnt/nvme/scratch`, the snapshot holds `/mnt/nvme/scratch`. Files the task needs from elsewhere are taken as [Files outside SPOTSNAP_PATHS](design.md#files-outside-spotsnap_paths) says.",
  }),
  pollIntervalMs: withDefault('1000', {
    name: 'SPOTSNAP_POLL_INTERVAL_MS',
    parse: parse.digitsFrom(100, 60_000),
    expected: 'a whole number of milliseconds from 100 to 60000 (default 1000)',
    description: 'How often the spot notice is polled, 100 to 60000.',
  }),
  logLevel: withDefault('info', {
    name: 'SPOTSNAP_LOG_LEVEL',
    parse: parse.oneOf(LOG_LEVELS),
    expected: `one of ${LOG_LEVELS.join(', ')}`,
    description: '`trace`, `debug`, `info`, `warn`, `error`, `fatal` or `silent`.',
  }),
  tcpMode: withDefault('established', {
    name: 'SPOTSNAP_TCP_MODE',
    parse: parse.oneOf<TcpMode>(['established', 'close']),
    expected: 'established or close',
    description:
      "What becomes of the task's open TCP connections. `established`: a tree holding an established connection is not checkpointed (CRIU could not hand the connections back to a tree it leaves frozen), it runs on with them; a tree without one is checkpointed as usual. `close`: connections are left untouched while the task is dumped (it runs on with them after a background checkpoint) and come back closed after a restore (the next read sees end of stream, the next write EPIPE or ECONNRESET): for tasks that reconnect. A snapshot taken in one mode restores only in that mode.",
  }),
  strict: withDefault('false', {
    name: 'SPOTSNAP_STRICT',
    parse: parse.parseBoolean,
    expected: 'true or false',
    description:
      '`true`: a bad setting or a missing prerequisite (CRIU, PID namespaces) stops the task from starting with code 178, instead of running it without snapshots.',
  }),
  afterCheckpoint: withDefault('wait', {
    name: 'SPOTSNAP_AFTER_CHECKPOINT',
    parse: parse.oneOf<AfterCheckpoint>(['wait', 'exit']),
    expected: 'wait or exit',
    description: '`wait` keeps the container alive until the instance is reclaimed (AWS Batch then retries the job as a host failure); `exit` exits with 177.',
  }),
  onRestoreFailure: withDefault('fresh', {
    name: 'SPOTSNAP_ON_RESTORE_FAILURE',
    parse: parse.oneOf<OnRestoreFailure>(['fresh', 'fail']),
    expected: 'fresh or fail',
    description: '`fresh` starts the task from scratch when no snapshot can be restored; `fail` exits with 176.',
  }),
  checkpointInterval: withDefault<CheckpointInterval>('auto', {
    name: 'SPOTSNAP_CHECKPOINT_INTERVAL',
    parse: parse.checkpointInterval,
    expected: 'a duration of at least 5s like 90s, 5m or 1h, or auto, or off',
    description:
      'Background checkpoints: a duration of at least `5s` (`90s`, `5m`, `1h`), `off`, or `auto`: every 10 minutes while the task holds at most 8 GiB of memory (a background dump freezes the task about a second per GiB on the machines measured here), none above.',
  }),
  packsInFlight: withDefault('auto', {
    name: 'SPOTSNAP_PACKS_IN_FLIGHT',
    parse: parse.packsInFlight,
    expected: "auto or a whole number from 1 to 64 (each costs 8 MiB of the agent's memory)",
    description:
      "Pack uploads in flight during a checkpoint, 1 to 64, each holding an 8 MiB buffer of the agent's memory. `auto`: one per GiB of the task's resident memory, from 2 to 16 (logged with each checkpoint). A restore keeps as many ranged reads of packs in flight (`auto`: one per GiB of images, from 4 to 16), each holding a 256 KiB read buffer and a 1 MiB buffer for the chunk it gathers; the chunks read and not yet checked by the workers are held to two per worker beyond that, the reads waiting meanwhile.",
  }),
  workers: withDefault('auto', {
    name: 'SPOTSNAP_WORKERS',
    parse: parse.workers,
    expected: 'auto or a whole number from 1 to 256',
    description:
      "Threads that hash, compress and decompress a snapshot's chunks. `auto`: one per core the container may use (its CPU affinity and cgroup CPU quota, not the host's count) but one, which is the main thread's, and at least one; a number sets the count, at most one per core. Each costs about 10 MiB of the agent's memory.",
  }),
  spillLimit: withDefault('4GiB', {
    name: 'SPOTSNAP_SPILL_LIMIT',
    parse: parse.byteSize,
    expected: 'a size like 0, 512MiB or 4GiB',
    description:
      "How much a background checkpoint may write to `SPOTSNAP_WORK_DIR` while its task is frozen, so that the freeze lasts about as long as CRIU's dump: its page windows, raw, as they come (sent on once the task runs again; no longer once the work dir takes them more slowly than the uploads would), and packs that find no upload slot; at most half the work dir's free space and, on tmpfs, half the memory the container has left. `0` keeps the task frozen until everything is sent. A final checkpoint never writes its memory to disk.",
  }),
  instancePricePerHour: withoutDefault('(none)', {
    name: 'SPOTSNAP_INSTANCE_PRICE_PER_HOUR',
    parse: parse.price,
    expected: 'a price in USD like 0.12',
    description: "The instance's price in USD, for the cost estimate in each attempt's report; without it the report gives none.",
  }),
  s3PricePerGbMonth: withDefault('0.023', {
    name: 'SPOTSNAP_S3_PRICE_PER_GB_MONTH',
    parse: parse.price,
    expected: 'a price in USD like 0.12',
    description: 'S3 storage price in USD, for the same estimate.',
  }),
  s3PricePer1000Puts: withDefault('0.005', {
    name: 'SPOTSNAP_S3_PRICE_PER_1000_PUTS',
    parse: parse.price,
    expected: 'a price in USD like 0.12',
    description: 'S3 PUT price in USD per 1,000 requests, for the same estimate.',
  }),
  sse: withValue<'none' | 'AES256' | 'aws:kms'>('(bucket default)', 'none', {
    name: 'SPOTSNAP_SSE',
    parse: parse.sseMode,
    expected: "AES256 or aws:kms (unset: the bucket's default encryption)",
    description: 'Server-side encryption asked for every object: `AES256` (SSE-S3) or `aws:kms` (SSE-KMS).',
  }),
  sseKmsKeyId: withoutDefault('(AWS managed key)', {
    name: 'SPOTSNAP_SSE_KMS_KEY_ID',
    parse: parse.text,
    expected: 'to be set only with SPOTSNAP_SSE=aws:kms',
    description: 'The KMS key for `SPOTSNAP_SSE=aws:kms`: key id, ARN or `alias/NAME`.',
  }),
  workDir: withDefault('/var/lib/spotsnap', {
    name: 'SPOTSNAP_WORK_DIR',
    parse: parse.absolutePath,
    expected: 'an absolute directory path',
    description:
      "Local directory for CRIU's small images while they are written and read, and for a background checkpoint's copy of the task's files and the page windows S3 could not take yet while they upload (room for the task's memory, for background checkpoints). A restore streams the memory pages into CRIU; only where it cannot (the agent outside its bundle) are they downloaded here first.",
  }),
  criuPath: withDefault('criu', {
    name: 'SPOTSNAP_CRIU',
    parse: parse.text,
    expected: 'a path to the CRIU binary, or its name on PATH',
    description: 'The CRIU binary.',
  }),
  criuExtraArgs: withValue<string[]>('(none)', [], {
    name: 'SPOTSNAP_CRIU_EXTRA_ARGS',
    parse: parse.words,
    expected: 'CRIU flags separated by spaces',
    description: 'Extra CRIU flags for dump and restore, separated by spaces.',
  }),
  imdsEndpoint: withDefault('http://169.254.169.254', {
    name: 'AWS_EC2_METADATA_SERVICE_ENDPOINT',
    parse: parse.httpEndpoint,
    expected: 'http://HOST[:PORT]',
    description: 'The metadata service (the IMDS simulator in tests).',
  }),
} as const;

export type EnvVarKey = keyof typeof ENV_VARS;

/** Each variable's name by its key: `EnvVar.s3Uri` is `SPOTSNAP_S3_URI`. */
export const EnvVar = Object.fromEntries(Object.entries(ENV_VARS).map(([key, spec]) => [key, spec.name])) as { readonly [K in EnvVarKey]: string };

/** Variables the AWS SDK reads, not the agent's parsers (snapshot-store.ts only asks whether an endpoint is set); documented beside the table. */
export const SDK_ENV_VARS: ReadonlyArray<{ names: readonly string[]; andOthers?: true; defaultText: string; description: string }> = [
  {
    names: ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'],
    defaultText: 'AWS',
    description: 'S3 endpoint (LocalStack or the emulator in tests); path-style addressing is used when set.',
  },
  {
    names: ['AWS_REGION', 'AWS_ACCESS_KEY_ID'],
    andOthers: true,
    defaultText: "the SDK's default chain",
    description: 'Credentials and region, as every AWS SDK reads them.',
  },
];
