// Reads the agent's configuration from the environment into a typed value, through the table of env-vars.ts; every bad value is named with what is expected.
import type { BatchIdentity, ConfigProblem, ConfigResult, Encryption, ReportProblem } from './config-types.ts';
import { jobId as parseJobId } from './env-var-parsers.ts';
import { ENV_VARS, type EnvVarSpec } from './env-vars.ts';
import { readVariable } from './read-env-var.ts';
import { readPaths } from './state-paths.ts';

export type * from './config-types.ts';
export { parseS3Uri } from './env-var-parsers.ts';
export { EnvVar } from './env-vars.ts';
export { resolveExistingPrefix } from './state-paths.ts';

/** Formats problems as one message per line, each naming the variable, its value and what to do. */
export function describeProblems(problems: ConfigProblem[]): string {
  return problems.map((p) => `${p.variable}=${p.value === undefined ? '(unset)' : JSON.stringify(p.value)}: expected ${p.expected}`).join('\n');
}

/** Reads the configuration; `cwd` is the task's working directory, the default state path. */
export function readConfig(env: NodeJS.ProcessEnv, cwd: string): ConfigResult {
  const problems: ConfigProblem[] = [];
  const bad: ReportProblem = (variable, expected) => {
    problems.push({ variable, value: env[variable], expected });
  };
  const read = <T, D extends T | undefined>(spec: EnvVarSpec<T, D>): T | D | undefined => readVariable(env, spec, bad);

  const logLevel = read(ENV_VARS.logLevel);
  const strict = read(ENV_VARS.strict);
  const enabled = read(ENV_VARS.enabled);
  if (enabled === false && problems.length === 0) return { kind: 'disabled', logLevel: logLevel ?? ENV_VARS.logLevel.defaultValue };

  const s3 = read(ENV_VARS.s3Uri);
  const batch = readBatch(env, bad);
  const jobId = readJobId(env, batch, bad);
  const attempt = read(ENV_VARS.batchAttempt);
  const paths = readPaths(env, cwd, bad);
  const pollIntervalMs = read(ENV_VARS.pollIntervalMs);
  const packsInFlight = read(ENV_VARS.packsInFlight);
  const workers = read(ENV_VARS.workers);
  const spillLimitBytes = read(ENV_VARS.spillLimit);
  const tcpMode = read(ENV_VARS.tcpMode);
  const afterCheckpoint = read(ENV_VARS.afterCheckpoint);
  const onRestoreFailure = read(ENV_VARS.onRestoreFailure);
  const workDir = read(ENV_VARS.workDir);
  const imdsEndpoint = read(ENV_VARS.imdsEndpoint);
  const encryption = readEncryption(env, bad);
  const checkpointInterval = read(ENV_VARS.checkpointInterval);
  const prices = {
    instancePerHour: read(ENV_VARS.instancePricePerHour),
    s3PerGbMonth: read(ENV_VARS.s3PricePerGbMonth),
    s3Per1000Puts: read(ENV_VARS.s3PricePer1000Puts),
  };
  const criuPath = read(ENV_VARS.criuPath);
  const criuExtraArgs = read(ENV_VARS.criuExtraArgs);

  if (problems.length > 0) {
    return { kind: 'invalid', problems, strict: strict === true, logLevel: logLevel ?? ENV_VARS.logLevel.defaultValue };
  }
  // With no problem reported, every value read is there.
  return {
    kind: 'enabled',
    config: {
      s3: s3!,
      encryption: encryption!,
      checkpointInterval: checkpointInterval!,
      prices: { instancePerHour: prices.instancePerHour, s3PerGbMonth: prices.s3PerGbMonth!, s3Per1000Puts: prices.s3Per1000Puts! },
      jobId: jobId!,
      batch,
      attempt: attempt!,
      paths,
      pollIntervalMs: pollIntervalMs!,
      packsInFlight: packsInFlight!,
      workers: workers!,
      spillLimitBytes: spillLimitBytes!,
      logLevel: logLevel!,
      tcpMode: tcpMode!,
      strict: strict!,
      afterCheckpoint: afterCheckpoint!,
      onRestoreFailure: onRestoreFailure!,
      workDir: workDir!,
      criuPath: criuPath!,
      criuExtraArgs: criuExtraArgs!,
      imdsEndpoint: imdsEndpoint!,
    },
  };
}

function readBatch(env: NodeJS.ProcessEnv, bad: ReportProblem): BatchIdentity {
  return { jobId: readVariable(env, ENV_VARS.batchJobId, bad), arrayIndex: readVariable(env, ENV_VARS.batchArrayIndex, bad) };
}

/** The snapshots' key. Children of an array job share SPOTSNAP_JOB_ID and AWS_BATCH_JOB_ID's parent part: the index keeps them apart. */
function readJobId(env: NodeJS.ProcessEnv, batch: BatchIdentity, bad: ReportProblem): string | undefined {
  const own = env[ENV_VARS.jobId.name]?.trim();
  const spec = own ? ENV_VARS.jobId : ENV_VARS.batchJobId;
  const given = own || batch.jobId;
  if (!given) {
    bad(ENV_VARS.jobId.name, `a job id (or run under AWS Batch, which sets ${ENV_VARS.batchJobId.name})`);
    return undefined;
  }
  if (parseJobId(given) === undefined) {
    bad(spec.name, spec.expected);
    return undefined;
  }
  const index = env[ENV_VARS.batchArrayIndex.name]?.trim();
  if (batch.arrayIndex === undefined || index === undefined) return given;
  const id = given.endsWith(`:${index}`) ? given : `${given}:${index}`;
  if (parseJobId(id) === undefined) bad(spec.name, `${spec.expected}, with ":${index}" of ${ENV_VARS.batchArrayIndex.name} appended`);
  return id;
}

function readEncryption(env: NodeJS.ProcessEnv, bad: ReportProblem): Encryption | undefined {
  const mode = readVariable(env, ENV_VARS.sse, bad);
  if (mode === undefined) return undefined;
  const keyId = readVariable(env, ENV_VARS.sseKmsKeyId, bad);
  if (keyId && mode !== 'aws:kms') {
    bad(ENV_VARS.sseKmsKeyId.name, ENV_VARS.sseKmsKeyId.expected);
    return undefined;
  }
  return mode === 'aws:kms' ? { mode, kmsKeyId: keyId } : { mode };
}
