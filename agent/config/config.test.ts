// Tests reading the agent's configuration from the environment: defaults, every bad value named, paths resolved on disk.
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeProblems, parseS3Uri, readConfig, resolveExistingPrefix, type ConfigResult } from './config.ts';

const base = { SPOTSNAP_ENABLED: 'true', SPOTSNAP_S3_URI: 's3://my-bucket/spot/snaps', AWS_BATCH_JOB_ID: 'job-1' };

function enabled(result: ConfigResult) {
  if (result.kind !== 'enabled') throw new Error(`expected an enabled config, got ${JSON.stringify(result)}`);
  return result.config;
}

function problemsOf(env: Record<string, string>, cwd = '/work') {
  const result = readConfig(env, cwd);
  if (result.kind !== 'invalid') throw new Error(`expected problems, got ${result.kind}`);
  return result.problems;
}

describe('readConfig', () => {
  it('is disabled when SPOTSNAP_ENABLED is unset or false', () => {
    expect(readConfig({}, '/work').kind).toBe('disabled');
    expect(readConfig({ SPOTSNAP_ENABLED: 'false' }, '/work').kind).toBe('disabled');
    expect(readConfig({ SPOTSNAP_ENABLED: '0', SPOTSNAP_S3_URI: 'garbage' }, '/work').kind).toBe('disabled');
  });

  it('reads an enabled configuration with its defaults', () => {
    expect(enabled(readConfig(base, '/work'))).toEqual({
      s3: { bucket: 'my-bucket', prefix: 'spot/snaps' },
      encryption: { mode: 'none' },
      checkpointInterval: { mode: 'auto' },
      prices: { instancePerHour: undefined, s3PerGbMonth: 0.023, s3Per1000Puts: 0.005 },
      jobId: 'job-1',
      batch: { jobId: 'job-1', arrayIndex: undefined },
      attempt: 1,
      paths: ['/work'],
      pollIntervalMs: 1000,
      packsInFlight: 'auto',
      workers: 'auto',
      spillLimitBytes: 4 * 1024 ** 3,
      logLevel: 'info',
      tcpMode: 'established',
      strict: false,
      afterCheckpoint: 'wait',
      onRestoreFailure: 'fresh',
      workDir: '/var/lib/spotsnap',
      criuPath: 'criu',
      criuExtraArgs: [],
      imdsEndpoint: 'http://169.254.169.254',
    });
  });

  it('takes the job id from SPOTSNAP_JOB_ID first, else AWS Batch with the array index', () => {
    expect(enabled(readConfig({ ...base, SPOTSNAP_JOB_ID: 'mine' }, '/w')).jobId).toBe('mine');
    expect(enabled(readConfig({ ...base, AWS_BATCH_JOB_ARRAY_INDEX: '7' }, '/w')).jobId).toBe('job-1:7');
    expect(enabled(readConfig({ ...base, AWS_BATCH_JOB_ID: 'job-1:7', AWS_BATCH_JOB_ARRAY_INDEX: '7' }, '/w')).jobId).toBe('job-1:7');
  });

  it('appends the array index to an explicit SPOTSNAP_JOB_ID too, so siblings never share snapshots', () => {
    const child = (index: string, own = 'pipeline-run') =>
      enabled(readConfig({ ...base, AWS_BATCH_JOB_ID: `parent:${index}`, AWS_BATCH_JOB_ARRAY_INDEX: index, SPOTSNAP_JOB_ID: own }, '/w'));
    expect(child('0').jobId).toBe('pipeline-run:0');
    expect(child('12').jobId).toBe('pipeline-run:12');
    expect(child('12', 'pipeline-run:12').jobId).toBe('pipeline-run:12');
    expect(child('2', 'run:12').jobId).toBe('run:12:2');
  });

  it('records the Batch job id and array index as Batch set them', () => {
    expect(enabled(readConfig({ ...base, AWS_BATCH_JOB_ID: 'parent:3', AWS_BATCH_JOB_ARRAY_INDEX: '3' }, '/w')).batch).toEqual({
      jobId: 'parent:3',
      arrayIndex: 3,
    });
    const { AWS_BATCH_JOB_ID: _, ...outsideBatch } = base;
    expect(enabled(readConfig({ ...outsideBatch, SPOTSNAP_JOB_ID: 'mine' }, '/w')).batch).toEqual({ jobId: undefined, arrayIndex: undefined });
  });

  it('names a bad array index once, with or without SPOTSNAP_JOB_ID', () => {
    for (const env of [
      { ...base, AWS_BATCH_JOB_ARRAY_INDEX: 'x7' },
      { ...base, AWS_BATCH_JOB_ARRAY_INDEX: 'x7', SPOTSNAP_JOB_ID: 'mine' },
    ]) {
      expect(problemsOf(env)).toEqual([{ variable: 'AWS_BATCH_JOB_ARRAY_INDEX', value: 'x7', expected: 'a whole number >= 0' }]);
    }
  });

  it('refuses a SPOTSNAP_JOB_ID that is too long once the array index is appended', () => {
    const problems = problemsOf({ ...base, SPOTSNAP_JOB_ID: 'j'.repeat(254), AWS_BATCH_JOB_ARRAY_INDEX: '42' });
    expect(problems).toEqual([expect.objectContaining({ variable: 'SPOTSNAP_JOB_ID' })]);
    expect(problems[0]!.expected).toContain('with ":42" of AWS_BATCH_JOB_ARRAY_INDEX appended');
  });

  it('reads the attempt, paths, interval, modes and endpoint', () => {
    const config = enabled(
      readConfig(
        {
          ...base,
          AWS_BATCH_JOB_ATTEMPT: '3',
          SPOTSNAP_PATHS: '/data:/scratch/run/',
          SPOTSNAP_POLL_INTERVAL_MS: '250',
          SPOTSNAP_PACKS_IN_FLIGHT: '8',
          SPOTSNAP_TCP_MODE: 'close',
          SPOTSNAP_AFTER_CHECKPOINT: 'exit',
          SPOTSNAP_ON_RESTORE_FAILURE: 'fail',
          SPOTSNAP_CRIU_EXTRA_ARGS: '--skip-in-flight  --ext-unix-sk',
          AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:1338/',
        },
        '/w',
      ),
    );
    expect(config).toMatchObject({
      attempt: 3,
      paths: ['/data', '/scratch/run'],
      pollIntervalMs: 250,
      packsInFlight: 8,
      tcpMode: 'close',
      afterCheckpoint: 'exit',
      onRestoreFailure: 'fail',
      criuExtraArgs: ['--skip-in-flight', '--ext-unix-sk'],
      imdsEndpoint: 'http://127.0.0.1:1338',
    });
  });

  it.each([
    ['SPOTSNAP_ENABLED', 'maybe', 'true or false'],
    ['SPOTSNAP_S3_URI', 'http://bucket/x', 's3://BUCKET/PREFIX'],
    ['SPOTSNAP_S3_URI', 's3://UPPER/x', 's3://BUCKET/PREFIX'],
    ['SPOTSNAP_S3_URI', 's3://bucket/../x', 's3://BUCKET/PREFIX'],
    ['AWS_BATCH_JOB_ATTEMPT', 'two', 'a whole number >= 1'],
    ['AWS_BATCH_JOB_ATTEMPT', '0', 'a whole number >= 1'],
    ['SPOTSNAP_POLL_INTERVAL_MS', 'fast', 'a whole number of milliseconds'],
    ['SPOTSNAP_POLL_INTERVAL_MS', '10', 'a whole number of milliseconds'],
    ['SPOTSNAP_POLL_INTERVAL_MS', '1.5e3', 'a whole number of milliseconds'],
    ['SPOTSNAP_LOG_LEVEL', 'loud', 'one of trace, debug'],
    ['SPOTSNAP_TCP_MODE', 'open', 'established or close'],
    ['SPOTSNAP_STRICT', 'very', 'true or false'],
    ['SPOTSNAP_AFTER_CHECKPOINT', 'linger', 'wait or exit'],
    ['SPOTSNAP_ON_RESTORE_FAILURE', 'retry', 'fresh or fail'],
    ['SPOTSNAP_PATHS', 'relative/dir', 'absolute directories'],
    ['SPOTSNAP_PATHS', '/', 'absolute directories other than "/"'],
    ['SPOTSNAP_WORK_DIR', 'tmp', 'an absolute directory path'],
    ['SPOTSNAP_JOB_ID', 'has spaces', 'letters, digits'],
    ['AWS_EC2_METADATA_SERVICE_ENDPOINT', '169.254.169.254', 'http://HOST[:PORT]'],
    ['SPOTSNAP_SSE', 'rot13', 'AES256 or aws:kms'],
    ['SPOTSNAP_INSTANCE_PRICE_PER_HOUR', '$0.12', 'a price in USD like 0.12'],
    ['SPOTSNAP_S3_PRICE_PER_GB_MONTH', '-1', 'a price in USD like 0.12'],
    ['SPOTSNAP_CHECKPOINT_INTERVAL', '5 minutes', 'a duration of at least 5s'],
    ['SPOTSNAP_CHECKPOINT_INTERVAL', '4s', 'a duration of at least 5s'],
    ['SPOTSNAP_SSE_KMS_KEY_ID', 'alias/mine', 'only with SPOTSNAP_SSE=aws:kms'],
    ['SPOTSNAP_PACKS_IN_FLIGHT', '0', 'a whole number from 1 to 64'],
    ['SPOTSNAP_PACKS_IN_FLIGHT', 'lots', 'auto or a whole number'],
    ['SPOTSNAP_PACKS_IN_FLIGHT', '65', 'each costs 8 MiB'],
  ])('names %s=%j and says what is expected', (variable, value, expected) => {
    const problems = problemsOf({ ...base, [variable]: value });
    expect(problems).toEqual([expect.objectContaining({ variable, value })]);
    expect(problems[0]!.expected).toContain(expected);
    expect(describeProblems(problems)).toBe(`${variable}=${JSON.stringify(value)}: expected ${problems[0]!.expected}`);
  });

  it('reads packs in flight: auto, in any case, or a number', () => {
    expect(enabled(readConfig({ ...base, SPOTSNAP_PACKS_IN_FLIGHT: 'AUTO' }, '/w')).packsInFlight).toBe('auto');
    expect(enabled(readConfig({ ...base, SPOTSNAP_PACKS_IN_FLIGHT: ' 64 ' }, '/w')).packsInFlight).toBe(64);
  });

  it('reads the background checkpoint interval', () => {
    expect(enabled(readConfig({ ...base, SPOTSNAP_CHECKPOINT_INTERVAL: '90s' }, '/w')).checkpointInterval).toEqual({ mode: 'every', ms: 90_000 });
    expect(enabled(readConfig({ ...base, SPOTSNAP_CHECKPOINT_INTERVAL: '5m' }, '/w')).checkpointInterval).toEqual({ mode: 'every', ms: 300_000 });
    expect(enabled(readConfig({ ...base, SPOTSNAP_CHECKPOINT_INTERVAL: 'off' }, '/w')).checkpointInterval).toEqual({ mode: 'off' });
  });

  it('reads server-side encryption', () => {
    expect(enabled(readConfig({ ...base, SPOTSNAP_SSE: 'aes256' }, '/w')).encryption).toEqual({ mode: 'AES256' });
    expect(enabled(readConfig({ ...base, SPOTSNAP_SSE: 'aws:kms' }, '/w')).encryption).toEqual({ mode: 'aws:kms', kmsKeyId: undefined });
    expect(enabled(readConfig({ ...base, SPOTSNAP_SSE: 'aws:kms', SPOTSNAP_SSE_KMS_KEY_ID: 'alias/k' }, '/w')).encryption).toEqual({
      mode: 'aws:kms',
      kmsKeyId: 'alias/k',
    });
  });

  it('asks for a job id when none is set', () => {
    const problems = problemsOf({ SPOTSNAP_ENABLED: 'true', SPOTSNAP_S3_URI: 's3://bucket/p' });
    expect(problems).toEqual([expect.objectContaining({ variable: 'SPOTSNAP_JOB_ID', value: undefined })]);
    expect(describeProblems(problems)).toMatch(/^SPOTSNAP_JOB_ID=\(unset\): expected a job id/);
  });

  it('resolves SPOTSNAP_PATHS and the working directory through symlinks, keeping parts that do not exist yet', () => {
    const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'spotsnap-config-')));
    mkdirSync(path.join(dir, 'mnt/nvme/scratch'), { recursive: true });
    symlinkSync(path.join(dir, 'mnt/nvme/scratch'), path.join(dir, 'scratch'));
    symlinkSync('mnt/nvme', path.join(dir, 'fast'));
    const real = path.join(dir, 'mnt/nvme/scratch');
    const paths = (raw: string, cwd = '/w') => enabled(readConfig({ ...base, SPOTSNAP_PATHS: raw }, cwd)).paths;
    expect(paths(path.join(dir, 'scratch'))).toEqual([real]);
    expect(paths(`${path.join(dir, 'scratch/run/')}:${path.join(dir, 'fast/scratch/new/deeper')}`)).toEqual([
      path.join(real, 'run'),
      path.join(real, 'new/deeper'),
    ]);
    // Two names for one directory are one path.
    expect(paths(`${path.join(dir, 'scratch')}:${real}:${path.join(dir, 'fast/scratch')}`)).toEqual([real]);
    expect(enabled(readConfig(base, path.join(dir, 'scratch'))).paths).toEqual([real]);
    expect(resolveExistingPrefix(path.join(dir, 'missing/a'))).toBe(path.join(dir, 'missing/a'));
  });

  it('refuses a SPOTSNAP_PATHS entry that resolves to "/" through a symlink', () => {
    const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'spotsnap-config-')));
    symlinkSync('/', path.join(dir, 'everything'));
    const problems = problemsOf({ ...base, SPOTSNAP_PATHS: `/w:${path.join(dir, 'everything')}` });
    expect(problems).toEqual([expect.objectContaining({ variable: 'SPOTSNAP_PATHS' })]);
    expect(problems[0]!.expected).toContain(`${path.join(dir, 'everything')} resolves to "/" through a symlink`);
  });

  it('refuses the working directory "/" as the default state path', () => {
    const problems = problemsOf(base, '/');
    expect(problems[0]).toMatchObject({ variable: 'SPOTSNAP_PATHS', value: undefined });
    expect(problems[0]!.expected).toContain('SPOTSNAP_PATHS=/work');
  });

  it('keeps the strict flag and log level of an invalid configuration', () => {
    const result = readConfig({ ...base, SPOTSNAP_S3_URI: 'nope', SPOTSNAP_STRICT: 'true', SPOTSNAP_LOG_LEVEL: 'debug' }, '/w');
    expect(result).toMatchObject({ kind: 'invalid', strict: true, logLevel: 'debug' });
  });
});

describe('parseS3Uri', () => {
  it('splits bucket and prefix, trimming slashes', () => {
    expect(parseS3Uri('s3://bucket')).toEqual({ bucket: 'bucket', prefix: '' });
    expect(parseS3Uri('s3://bucket/')).toEqual({ bucket: 'bucket', prefix: '' });
    expect(parseS3Uri('s3://b.u-c.k3t/a/b/')).toEqual({ bucket: 'b.u-c.k3t', prefix: 'a/b' });
    expect(parseS3Uri('s3:/bucket')).toBeUndefined();
  });
});
