import { describe, expect, it } from 'vitest';
import { jobSnapshotsPrefix, newPackId, newSnapshotId, packKey, snapshotIdOfManifestKey, snapshotObjectKey } from './s3-layout.ts';

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
