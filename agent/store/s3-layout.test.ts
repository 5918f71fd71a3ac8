// Tests the S3 layout: where each object of a job goes, how keys are taken apart, and that its table covers every key.
import { describe, expect, it } from 'vitest';
import {
  attemptOfSnapshotId,
  doctorProbeKey,
  isManifestKey,
  jobEndedKey,
  jobFinishedKey,
  jobIdOfPrefix,
  jobReportKey,
  jobReportsPrefix,
  jobsPrefix,
  jobSnapshotsPrefix,
  newPackId,
  newSnapshotId,
  packIdOfKey,
  packKey,
  S3_LAYOUT,
  snapshotIdOfKey,
  snapshotIdOfManifestKey,
  snapshotObjectKey,
} from './s3-layout.ts';

const location = { bucket: 'b', prefix: 'team/spot' };

describe('S3 layout', () => {
  it('puts every object of a snapshot under the job', () => {
    expect(jobSnapshotsPrefix(location, 'job-1:3')).toBe('team/spot/job-1:3/snapshots/');
    expect(snapshotObjectKey(location, 'j', 'a0002-20261121T091500123Z', 'criuLog')).toBe('team/spot/j/snapshots/a0002-20261121T091500123Z/criu-dump.log');
    expect(packKey(location, 'j', 'ab'.repeat(16))).toBe(`team/spot/j/packs/${'ab'.repeat(16)}`);
    expect(newPackId()).toMatch(/^[0-9a-f]{32}$/);
    expect(newPackId()).not.toBe(newPackId());
    expect(snapshotObjectKey({ bucket: 'b', prefix: '' }, 'j', 's', 'manifest')).toBe('j/snapshots/s/manifest.json');
  });

  it('names snapshots so that they sort by attempt, then time', () => {
    const ids = [
      newSnapshotId(2, new Date('2026-11-21T09:00:00.000Z')),
      newSnapshotId(10, new Date('2026-11-21T08:00:00.000Z')),
      newSnapshotId(2, new Date('2026-11-21T09:00:00.001Z')),
    ];
    expect(ids[0]).toBe('a0002-20261121T090000000Z');
    expect([...ids].sort()).toEqual([ids[0], ids[2], ids[1]]);
  });

  it('recognises only manifest keys of the job', () => {
    const id = 'a0001-20261121T090000000Z';
    expect(snapshotIdOfManifestKey(location, 'j', `team/spot/j/snapshots/${id}/manifest.json`)).toBe(id);
    expect(snapshotIdOfManifestKey(location, 'j', `team/spot/j/snapshots/${id}/criu-dump.log`)).toBeUndefined();
    expect(snapshotIdOfManifestKey(location, 'j', `team/spot/j2/snapshots/${id}/manifest.json`)).toBeUndefined();
    expect(snapshotIdOfManifestKey(location, 'j', `team/spot/j/snapshots/x/${id}/manifest.json`)).toBeUndefined();
  });
});

describe('S3 layout, taken apart', () => {
  it('finds job ids, snapshot ids, manifests and pack ids in keys', () => {
    expect(jobsPrefix(location)).toBe('team/spot/');
    expect(jobsPrefix({ bucket: 'b', prefix: '' })).toBe('');
    expect(jobIdOfPrefix(location, 'team/spot/job-1:3/')).toBe('job-1:3');
    expect(jobIdOfPrefix(location, 'team/spot//')).toBeUndefined();
    expect(jobIdOfPrefix({ bucket: 'b', prefix: '' }, 'j/')).toBe('j');
    const id = 'a0001-20261121T090000000Z';
    expect(snapshotIdOfKey(location, 'j', snapshotObjectKey(location, 'j', id, 'criuLog'))).toBe(id);
    expect(isManifestKey(snapshotObjectKey(location, 'j', id, 'manifest'))).toBe(true);
    expect(isManifestKey(snapshotObjectKey(location, 'j', id, 'criuLog'))).toBe(false);
    expect(packIdOfKey(packKey(location, 'j', 'ab'.repeat(16)))).toBe('ab'.repeat(16));
    expect(jobReportKey(location, 'j', 2)).toBe(`${jobReportsPrefix(location, 'j')}a0002.json`);
    expect(attemptOfSnapshotId(id)).toBe(1);
  });
});

describe('S3_LAYOUT', () => {
  /** A key pattern as a regular expression: each placeholder stands for one part (NNNN for four digits). */
  const patternOf = (key: string) =>
    new RegExp(
      `^${key
        .replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
        .replace(/NNNN/g, '\\d{4}')
        .replace(/\b[A-Z][A-Z_]*[A-Z]\b/g, '[^/]+')}$`,
    );
  const matching = (key: string) => S3_LAYOUT.filter((e) => patternOf(e.key).test(key)).map((e) => e.key);

  it('has a row, and one only, for every key the layout builds', () => {
    const snapshotId = newSnapshotId(3, new Date('2026-11-21T09:15:00.123Z'));
    const keys = [
      packKey(location, 'job-1', newPackId()),
      snapshotObjectKey(location, 'job-1', snapshotId, 'criuLog'),
      snapshotObjectKey(location, 'job-1', snapshotId, 'manifest'),
      jobReportKey(location, 'job-1', 3),
      jobEndedKey(location, 'job-1'),
      jobFinishedKey(location, 'job-1'),
      doctorProbeKey(location, '6f1c0d9e-4a6b-4c1e-9a3f-0d6b2f1e8a77'),
    ];
    for (const key of keys) expect(matching(key.replace(/^team\/spot\//, 'PREFIX/')), key).toHaveLength(1);
    expect(S3_LAYOUT).toHaveLength(keys.length);
  });
});
