// Reads the agent's configuration from the environment into a typed value; every bad value is named with what is expected.
import { realpathSync } from 'node:fs';
import path from 'node:path';

/** The environment variables the agent reads; the README's configuration table documents each of them. */
export const EnvVar = {
  enabled: 'SPOTSNAP_ENABLED',
  s3Uri: 'SPOTSNAP_S3_URI',
  jobId: 'SPOTSNAP_JOB_ID',
  batchJobId: 'AWS_BATCH_JOB_ID',
  batchArrayIndex: 'AWS_BATCH_JOB_ARRAY_INDEX',
  batchAttempt: 'AWS_BATCH_JOB_ATTEMPT',
  paths: 'SPOTSNAP_PATHS',
  pollIntervalMs: 'SPOTSNAP_POLL_INTERVAL_MS',
  logLevel: 'SPOTSNAP_LOG_LEVEL',
  tcpMode: 'SPOTSNAP_TCP_MODE',
  strict: 'SPOTSNAP_STRICT',
  afterCheckpoint: 'SPOTSNAP_AFTER_CHECKPOINT',
  onRestoreFailure: 'SPOTSNAP_ON_RESTORE_FAILURE',
  workDir: 'SPOTSNAP_WORK_DIR',
  criuPath: 'SPOTSNAP_CRIU',
  criuExtraArgs: 'SPOTSNAP_CRIU_EXTRA_ARGS',
  imdsEndpoint: 'AWS_EC2_METADATA_SERVICE_ENDPOINT',
  checkpointInterval: 'SPOTSNAP_CHECKPOINT_INTERVAL',
  packsInFlight: 'SPOTSNAP_PACKS_IN_FLIGHT',
  instancePricePerHour: 'SPOTSNAP_INSTANCE_PRICE_PER_HOUR',
  s3PricePerGbMonth: 'SPOTSNAP_S3_PRICE_PER_GB_MONTH',
  s3PricePer1000Puts: 'SPOTSNAP_S3_PRICE_PER_1000_PUTS',
  sse: 'SPOTSNAP_SSE',
  sseKmsKeyId: 'SPOTSNAP_SSE_KMS_KEY_ID',
} as const;

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export type TcpMode = 'established' | 'close';
export type AfterCheckpoint = 'wait' | 'exit';
export type OnRestoreFailure = 'fresh' | 'fail';

/** Server-side encryption asked of S3 for every object spotsnap writes. */
export type Encryption = { mode: 'none' } | { mode: 'AES256' } | { mode: 'aws:kms'; kmsKeyId: string | undefined };

/**
 * When to take background checkpoints: 'auto' every 10 minutes while the task holds at most
 * AUTO_BACKGROUND_MAX_BYTES of memory, a fixed interval, or never.
 */
export type CheckpointInterval = { mode: 'auto' } | { mode: 'every'; ms: number } | { mode: 'off' };

/** Prices for the report's cost estimate, in USD. */
export interface Prices {
  /** The instance's price per hour; without it the report gives no cost estimate. */
  instancePerHour: number | undefined;
  s3PerGbMonth: number;
  s3Per1000Puts: number;
}

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slash; may be empty. */
  prefix: string;
}

/** What AWS Batch says about this job, for the manifest to record; undefined outside Batch. */
export interface BatchIdentity {
  /** AWS_BATCH_JOB_ID as Batch set it (an array child's ends with ":INDEX"). */
  jobId: string | undefined;
  /** AWS_BATCH_JOB_ARRAY_INDEX, for a child of an array job. */
  arrayIndex: number | undefined;
}

export interface AgentConfig {
  s3: S3Location;
  encryption: Encryption;
  checkpointInterval: CheckpointInterval;
  prices: Prices;
  /** The snapshots' key: SPOTSNAP_JOB_ID or AWS_BATCH_JOB_ID, with ":INDEX" of an array child appended to either. */
  jobId: string;
  batch: BatchIdentity;
  attempt: number;
  /**
   * Absolute directories whose files are part of the task's state, as they are on disk: symlinks in them resolved
   * (the longest existing prefix), so packing, the manifest and extraction's allowed roots name the same paths.
   */
  paths: string[];
  pollIntervalMs: number;
  /** Pack uploads in flight during a checkpoint (each holds an 8 MiB transfer buffer), or 'auto' by the task's size. */
  packsInFlight: number | 'auto';
  logLevel: LogLevel;
  tcpMode: TcpMode;
  strict: boolean;
  afterCheckpoint: AfterCheckpoint;
  onRestoreFailure: OnRestoreFailure;
  /** Local directory for CRIU images and staging. */
  workDir: string;
  criuPath: string;
  criuExtraArgs: string[];
  imdsEndpoint: string;
}

/** One bad setting: which variable, the value it had, and what it should be. */
export interface ConfigProblem {
  variable: string;
  value: string | undefined;
  expected: string;
}

export type ConfigResult =
  | { kind: 'disabled'; logLevel: LogLevel }
  | { kind: 'enabled'; config: AgentConfig }
  | { kind: 'invalid'; problems: ConfigProblem[]; strict: boolean; logLevel: LogLevel };

const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];
const DEFAULT_IMDS_ENDPOINT = 'http://169.254.169.254';
const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/;

/** Formats problems as one message per line, each naming the variable, its value and what to do. */
export function describeProblems(problems: ConfigProblem[]): string {
  return problems
    .map((p) => `${p.variable}=${p.value === undefined ? '(unset)' : JSON.stringify(p.value)}: expected ${p.expected}`)
    .join('\n');
}

/** Parses an s3://bucket/prefix URI; returns undefined when it is not one. */
export function parseS3Uri(uri: string): S3Location | undefined {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (!match) return undefined;
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((part) => part === '..' || part === '.')) return undefined;
  return { bucket: match[1]!, prefix };
}

function parseBoolean(raw: string | undefined): boolean | undefined {
  if (raw === undefined || raw.trim() === '') return false;
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return undefined;
}

function oneOf<T extends string>(raw: string | undefined, allowed: readonly T[], fallback: T): T | undefined {
  if (raw === undefined || raw.trim() === '') return fallback;
  const v = raw.trim().toLowerCase() as T;
  return allowed.includes(v) ? v : undefined;
}

/** Reads the configuration; `cwd` is the task's working directory, the default state path. */
export function readConfig(env: NodeJS.ProcessEnv, cwd: string): ConfigResult {
  const problems: ConfigProblem[] = [];
  const bad = (variable: string, expected: string): void => {
    problems.push({ variable, value: env[variable], expected });
  };

  const logLevel = oneOf(env[EnvVar.logLevel], LOG_LEVELS, 'info');
  if (logLevel === undefined) bad(EnvVar.logLevel, `one of ${LOG_LEVELS.join(', ')}`);
  const strict = parseBoolean(env[EnvVar.strict]);
  if (strict === undefined) bad(EnvVar.strict, 'true or false');
  const enabled = parseBoolean(env[EnvVar.enabled]);
  if (enabled === undefined) bad(EnvVar.enabled, 'true or false (unset means false)');
  if (enabled === false && problems.length === 0) return { kind: 'disabled', logLevel: logLevel ?? 'info' };

  const s3Raw = env[EnvVar.s3Uri];
  const s3 = s3Raw ? parseS3Uri(s3Raw.trim()) : undefined;
  if (!s3) bad(EnvVar.s3Uri, 's3://BUCKET/PREFIX (a valid bucket name, required when spotsnap is enabled)');

  const batch = readBatch(env, bad);
  const jobId = readJobId(env, batch, bad);

  const attemptRaw = env[EnvVar.batchAttempt];
  let attempt = 1;
  if (attemptRaw !== undefined && attemptRaw.trim() !== '') {
    attempt = Number(attemptRaw.trim());
    if (!Number.isInteger(attempt) || attempt < 1) bad(EnvVar.batchAttempt, 'a whole number >= 1');
  }

  const paths = readPaths(env[EnvVar.paths], cwd, bad);

  const pollRaw = env[EnvVar.pollIntervalMs];
  let pollIntervalMs = 1000;
  if (pollRaw !== undefined && pollRaw.trim() !== '') {
    pollIntervalMs = Number(pollRaw.trim());
    if (!/^\d+$/.test(pollRaw.trim()) || pollIntervalMs < 100 || pollIntervalMs > 60_000) {
      bad(EnvVar.pollIntervalMs, 'a whole number of milliseconds from 100 to 60000 (default 1000)');
    }
  }

  const packsRaw = (env[EnvVar.packsInFlight] ?? '').trim().toLowerCase();
  let packsInFlight: number | 'auto' = 'auto';
  if (packsRaw !== '' && packsRaw !== 'auto') {
    packsInFlight = Number(packsRaw);
    if (!/^\d+$/.test(packsRaw) || packsInFlight < 1 || packsInFlight > 64) {
      bad(EnvVar.packsInFlight, "auto or a whole number from 1 to 64 (each costs 8 MiB of the agent's memory)");
    }
  }

  const tcpMode = oneOf<TcpMode>(env[EnvVar.tcpMode], ['established', 'close'], 'established');
  if (!tcpMode) bad(EnvVar.tcpMode, 'established or close');
  const afterCheckpoint = oneOf<AfterCheckpoint>(env[EnvVar.afterCheckpoint], ['wait', 'exit'], 'wait');
  if (!afterCheckpoint) bad(EnvVar.afterCheckpoint, 'wait or exit');
  const onRestoreFailure = oneOf<OnRestoreFailure>(env[EnvVar.onRestoreFailure], ['fresh', 'fail'], 'fresh');
  if (!onRestoreFailure) bad(EnvVar.onRestoreFailure, 'fresh or fail');

  const workDir = (env[EnvVar.workDir] ?? '').trim() || '/var/lib/spotsnap';
  if (!path.isAbsolute(workDir)) bad(EnvVar.workDir, 'an absolute directory path');

  const imdsEndpoint = (env[EnvVar.imdsEndpoint] ?? '').trim() || DEFAULT_IMDS_ENDPOINT;
  if (!/^https?:\/\/[^/\s]+\/?$/.test(imdsEndpoint)) bad(EnvVar.imdsEndpoint, 'http://HOST[:PORT]');

  const encryption = readEncryption(env, bad);
  const checkpointInterval = readInterval(env[EnvVar.checkpointInterval], bad);
  const price = (variable: string, fallback: number | undefined): number | undefined => {
    const raw = (env[variable] ?? '').trim();
    if (raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || !/^\d+(\.\d+)?$/.test(raw)) {
      bad(variable, 'a price in USD like 0.12');
      return fallback;
    }
    return value;
  };
  const prices: Prices = {
    instancePerHour: price(EnvVar.instancePricePerHour, undefined),
    s3PerGbMonth: price(EnvVar.s3PricePerGbMonth, 0.023)!,
    s3Per1000Puts: price(EnvVar.s3PricePer1000Puts, 0.005)!,
  };
  const criuPath = (env[EnvVar.criuPath] ?? '').trim() || 'criu';
  const criuExtraArgs = (env[EnvVar.criuExtraArgs] ?? '').split(/\s+/).filter((a) => a !== '');

  if (problems.length > 0) {
    return { kind: 'invalid', problems, strict: strict === true, logLevel: logLevel ?? 'info' };
  }
  return {
    kind: 'enabled',
    config: {
      s3: s3!,
      encryption: encryption!,
      checkpointInterval: checkpointInterval!,
      prices,
      jobId: jobId!,
      batch,
      attempt,
      paths,
      pollIntervalMs,
      packsInFlight,
      logLevel: logLevel!,
      tcpMode: tcpMode!,
      strict: strict!,
      afterCheckpoint: afterCheckpoint!,
      onRestoreFailure: onRestoreFailure!,
      workDir,
      criuPath,
      criuExtraArgs,
      imdsEndpoint: imdsEndpoint.replace(/\/$/, ''),
    },
  };
}

function readBatch(env: NodeJS.ProcessEnv, bad: (variable: string, expected: string) => void): BatchIdentity {
  const jobId = env[EnvVar.batchJobId]?.trim() || undefined;
  const index = env[EnvVar.batchArrayIndex]?.trim();
  if (index === undefined || index === '') return { jobId, arrayIndex: undefined };
  const arrayIndex = Number(index);
  if (!/^\d+$/.test(index) || !Number.isSafeInteger(arrayIndex)) {
    bad(EnvVar.batchArrayIndex, 'a whole number >= 0');
    return { jobId, arrayIndex: undefined };
  }
  return { jobId, arrayIndex };
}

/** The snapshots' key. Children of an array job share SPOTSNAP_JOB_ID and AWS_BATCH_JOB_ID's parent part: the index keeps them apart. */
function readJobId(env: NodeJS.ProcessEnv, batch: BatchIdentity, bad: (variable: string, expected: string) => void): string | undefined {
  const expected = 'letters, digits and . _ : - (at most 255 characters)';
  const own = env[EnvVar.jobId]?.trim();
  const variable = own ? EnvVar.jobId : EnvVar.batchJobId;
  const given = own || batch.jobId;
  if (!given) {
    bad(EnvVar.jobId, `a job id (or run under AWS Batch, which sets ${EnvVar.batchJobId})`);
    return undefined;
  }
  if (!JOB_ID_PATTERN.test(given)) {
    bad(variable, expected);
    return undefined;
  }
  const index = env[EnvVar.batchArrayIndex]?.trim();
  if (batch.arrayIndex === undefined || index === undefined) return given;
  const id = given.endsWith(`:${index}`) ? given : `${given}:${index}`;
  if (!JOB_ID_PATTERN.test(id)) bad(variable, `${expected}, with ":${index}" of ${EnvVar.batchArrayIndex} appended`);
  return id;
}

/** Parses "90s", "5m", "1h", "auto" or "off"; at least 5 s between background checkpoints. */
export function readInterval(raw: string | undefined, bad: (variable: string, expected: string) => void): CheckpointInterval | undefined {
  const value = (raw ?? '').trim().toLowerCase();
  if (value === '' || value === 'auto') return { mode: 'auto' };
  if (value === 'off' || value === '0') return { mode: 'off' };
  const match = /^(\d+)(s|m|h)$/.exec(value);
  const ms = match ? Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h'] : NaN;
  if (!(ms >= 5_000)) {
    bad(EnvVar.checkpointInterval, 'a duration of at least 5s like 90s, 5m or 1h, or auto, or off');
    return undefined;
  }
  return { mode: 'every', ms };
}

function readEncryption(env: NodeJS.ProcessEnv, bad: (variable: string, expected: string) => void): Encryption | undefined {
  const raw = (env[EnvVar.sse] ?? '').trim();
  const keyId = (env[EnvVar.sseKmsKeyId] ?? '').trim() || undefined;
  const mode = raw === '' ? 'none' : raw.toLowerCase() === 'aes256' ? 'AES256' : raw.toLowerCase() === 'aws:kms' ? 'aws:kms' : undefined;
  if (mode === undefined) {
    bad(EnvVar.sse, 'AES256 or aws:kms (unset: the bucket\'s default encryption)');
    return undefined;
  }
  if (keyId && mode !== 'aws:kms') {
    bad(EnvVar.sseKmsKeyId, `to be set only with ${EnvVar.sse}=aws:kms`);
    return undefined;
  }
  return mode === 'aws:kms' ? { mode, kmsKeyId: keyId } : { mode };
}

/**
 * The real path of p's longest existing prefix (every symlink in it resolved), with the rest of p kept as given:
 * `/scratch/run` with `/scratch -> /mnt/nvme/scratch` and no `run` yet is `/mnt/nvme/scratch/run`.
 */
export function resolveExistingPrefix(p: string): string {
  const absolute = path.resolve(p);
  const rest: string[] = [];
  for (let prefix = absolute; ; prefix = path.dirname(prefix)) {
    try {
      return path.join(realpathSync.native(prefix), ...rest);
    } catch {
      if (prefix === path.dirname(prefix)) return absolute;
      rest.unshift(path.basename(prefix));
    }
  }
}

function readPaths(raw: string | undefined, cwd: string, bad: (variable: string, expected: string) => void): string[] {
  if (raw === undefined || raw.trim() === '') {
    if (cwd === '/') {
      bad(EnvVar.paths, 'set, because the working directory is "/" and the whole filesystem cannot be snapshotted (e.g. SPOTSNAP_PATHS=/work)');
      return [];
    }
    return [resolveExistingPrefix(cwd)];
  }
  const listed = raw.split(':').map((p) => p.trim()).filter(Boolean);
  if (listed.length === 0 || listed.some((p) => !path.isAbsolute(p) || path.resolve(p) === '/')) {
    bad(EnvVar.paths, 'absolute directories other than "/", separated by ":" (default: the working directory)');
    return [];
  }
  const resolved = listed.map(resolveExistingPrefix);
  const toRoot = listed.find((_p, i) => resolved[i] === '/');
  if (toRoot !== undefined) {
    bad(EnvVar.paths, `directories other than "/": ${toRoot} resolves to "/" through a symlink`);
    return [];
  }
  return [...new Set(resolved)];
}
