// The typed shape of the agent's configuration and of the problems found reading it.

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
  /** Chunk worker threads (SPOTSNAP_WORKERS). */
  workers: number | 'auto';
  /** Bytes of a background checkpoint's chunks that may wait in the work dir (SPOTSNAP_SPILL_LIMIT). */
  spillLimitBytes: number;
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

/** Records a bad setting: the variable and what it should be (its value is looked up in the environment). */
export type ReportProblem = (variable: string, expected: string) => void;

export type ConfigResult =
  | { kind: 'disabled'; logLevel: LogLevel }
  | { kind: 'enabled'; config: AgentConfig }
  | { kind: 'invalid'; problems: ConfigProblem[]; strict: boolean; logLevel: LogLevel };
