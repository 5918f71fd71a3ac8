// Restore's choice of snapshot: which are tried and in which order, and why one cannot resume this task here.
import { describe, expect, it } from 'vitest';
import { sampleManifest } from '../../test/support/sample-manifest.ts';
import { readConfig, type AgentConfig } from '../config/config.ts';
import { commandDigest } from '../store/manifest.ts';
import { chooseSnapshots, incompatibility, MAX_SNAPSHOTS_TRIED } from './snapshot-choice.ts';

const command = ['python3', 'task.py'];

function configFor(env: Record<string, string>): AgentConfig {
  const result = readConfig({ SPOTSNAP_ENABLED: 'true', SPOTSNAP_S3_URI: 's3://bucket/prefix', SPOTSNAP_PATHS: '/work', ...env }, '/work');
  if (result.kind !== 'enabled') throw new Error(`test configuration refused: ${JSON.stringify(result)}`);
  return result.config;
}

/** A manifest of job `job-1` (AWS Batch job job-1, no array), taken from `command` on this architecture. */
const manifest = (overrides: Parameters<typeof sampleManifest>[0] = {}) => {
  const m = sampleManifest(overrides);
  return { ...m, host: { ...m.host, arch: process.arch }, task: { ...m.task, commandSha256: commandDigest(command) } };
};

describe('incompatibility', () => {
  it('accepts a snapshot of the same job, Batch job, array index, command, architecture and paths', () => {
    expect(incompatibility(manifest(), configFor({ AWS_BATCH_JOB_ID: 'job-1' }), command)).toBeUndefined();
  });

  it('refuses a sibling of an array job, even under one explicit SPOTSNAP_JOB_ID', () => {
    const sibling = manifest({ jobId: 'shared:3', batch: { jobId: 'job-1', arrayIndex: 3 } });
    const config = configFor({ SPOTSNAP_JOB_ID: 'shared', AWS_BATCH_JOB_ID: 'job-1', AWS_BATCH_JOB_ARRAY_INDEX: '4' });
    expect(config.jobId).toBe('shared:4');
    expect(incompatibility(sibling, config, command)).toBe('it belongs to job shared:3, this is shared:4');
    // Even a manifest filed under this job's id is refused when it records another index.
    expect(incompatibility({ ...sibling, jobId: 'shared:4' }, config, command)).toBe('it was taken in AWS Batch job job-1 index 3, this is job-1 index 4');
  });

  it('refuses another AWS Batch job under the same explicit SPOTSNAP_JOB_ID', () => {
    const other = manifest({ jobId: 'fixed' });
    expect(incompatibility(other, configFor({ SPOTSNAP_JOB_ID: 'fixed', AWS_BATCH_JOB_ID: 'job-2' }), command)).toBe(
      'it was taken in AWS Batch job job-1, this is job-2',
    );
  });

  it('refuses another command, architecture or set of paths, saying which', () => {
    const config = configFor({ AWS_BATCH_JOB_ID: 'job-1' });
    expect(incompatibility(manifest(), config, ['python3', 'other.py'])).toBe('it was taken from a different command line');
    expect(incompatibility({ ...manifest(), host: { kernel: '6.1', arch: 'riscv64' } }, config, command)).toBe(
      `it was taken on riscv64, this is ${process.arch}`,
    );
    expect(incompatibility(manifest({ paths: ['/data'] }), config, command)).toBe('it holds paths /data but SPOTSNAP_PATHS is /work');
  });

  it('refuses a snapshot whose chunks are named by a hash this agent cannot compute, saying why', () => {
    const config = configFor({ AWS_BATCH_JOB_ID: 'job-1' });
    const noBlake3 = (algorithm: string) => (algorithm === 'blake3' ? 'blake.linux-x64-gnu.node: cannot open shared object file' : undefined);
    expect(incompatibility(manifest(), config, command, process.arch, noBlake3)).toBe(
      'its chunks are named by blake3, which this agent cannot check: blake.linux-x64-gnu.node: cannot open shared object file',
    );
    // One named by SHA-256 throughout is fine without BLAKE3.
    const bySha256 = manifest();
    for (const ref of [...bySha256.images.flatMap((i) => i.chunks), ...bySha256.files.chunks, ...bySha256.outside.files.chunks]) {
      ref.digest = `sha256:${ref.digest.split(':')[1]}`;
    }
    expect(incompatibility(bySha256, config, command, process.arch, noBlake3)).toBeUndefined();
  });
});

describe('chooseSnapshots', () => {
  const ids = ['a0001-20261121T090000000Z', 'a0003-20261121T110000000Z', 'a0002-20261121T100000000Z', 'a0003-20261121T113000000Z', 'a0004-20261121T120000000Z'];

  it('tries the newest first, and at most three', () => {
    expect(MAX_SNAPSHOTS_TRIED).toBe(3);
    expect(chooseSnapshots(ids, undefined, 'job-1')).toEqual({
      kind: 'try',
      snapshotIds: ['a0004-20261121T120000000Z', 'a0003-20261121T113000000Z', 'a0003-20261121T110000000Z'],
    });
  });

  it('skips every snapshot up to the attempt in which the task last ended', () => {
    expect(chooseSnapshots(ids, 3, 'job-1')).toEqual({ kind: 'try', snapshotIds: ['a0004-20261121T120000000Z'] });
    expect(chooseSnapshots(ids, 4, 'job-1')).toEqual({ kind: 'none', reason: "the task ended in attempt 4 after the job's snapshots were taken" });
  });

  it('says so when the job has no committed snapshot', () => {
    expect(chooseSnapshots([], undefined, 'job-1')).toEqual({ kind: 'none', reason: 'no committed snapshot for job job-1' });
  });
});
