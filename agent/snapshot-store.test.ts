import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket, emulatorClient } from '../test/support/s3-emulator.ts';
import { sampleManifest } from '../test/support/sample-manifest.ts';
import { ChecksumMismatchError, PART_SIZE, SnapshotStore } from './snapshot-store.ts';

const endpoint = inject('s3Endpoint');
const bucket = 'unit-snapshot-store';
const client = emulatorClient(endpoint);
const store = (jobId = `job-${randomUUID()}`) => new SnapshotStore(client, { bucket, prefix: 'unit' }, jobId);

beforeAll(() => createBucket(endpoint, bucket));

async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('SnapshotStore against the S3 emulator', () => {
  it('uploads a multi-part stream and reports its size and SHA-256', async () => {
    const s = store();
    const data = randomBytes(2 * PART_SIZE + 12345);
    const progress: number[] = [];
    const object = await s.upload('a0001-20261121T090000000Z', 'images', Readable.from([data.subarray(0, 1000), data.subarray(1000)]), (n) => progress.push(n));
    expect(object).toEqual({ name: 'images', bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
    expect(progress.at(-1)).toBe(data.length);
    const stored = await client.send(new GetObjectCommand({ Bucket: bucket, Key: s.key('a0001-20261121T090000000Z', 'images') }));
    expect(Number(stored.ContentLength)).toBe(data.length);
  });

  it('lists only committed snapshots, newest first', async () => {
    const s = store();
    const ids = ['a0001-20261121T090000000Z', 'a0002-20261121T091000000Z', 'a0002-20261121T090500000Z'];
    for (const id of ids) await s.commit(sampleManifest({ jobId: s.jobId, snapshotId: id }));
    await s.upload('a0003-20261121T092000000Z', 'images', Readable.from([Buffer.from('torn')]));
    expect(await s.committedSnapshotIds()).toEqual(['a0002-20261121T091000000Z', 'a0002-20261121T090500000Z', 'a0001-20261121T090000000Z']);
    expect(await store().committedSnapshotIds()).toEqual([]);
  });

  it('downloads and verifies an object against the manifest', async () => {
    const s = store();
    const id = 'a0001-20261121T090000000Z';
    const data = randomBytes(100_000);
    const object = await s.upload(id, 'files', Readable.from([data]));
    let received: Buffer = Buffer.alloc(0);
    await s.download(id, object, async (body) => (received = await collect(body)));
    expect(received.equals(data)).toBe(true);
  });

  it('rejects an object whose bytes changed since the manifest was written', async () => {
    const s = store();
    const id = 'a0001-20261121T090000000Z';
    const object = await s.upload(id, 'files', Readable.from([Buffer.from('original')]));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: s.key(id, 'files'), Body: 'tampered' }));
    await expect(s.download(id, object, collect)).rejects.toThrow(ChecksumMismatchError);
  });

  it('refuses a manifest of another job stored under this job', async () => {
    const s = store('job-a');
    const id = 'a0001-20261121T090000000Z';
    await s.commit(sampleManifest({ jobId: 'job-b', snapshotId: id }));
    await expect(s.readManifest(id)).rejects.toThrow(/names job "job-b".*not job "job-a".*refusing it/);
  });

  it('deletes the named objects of snapshots and keeps the rest', async () => {
    const s = store();
    const id = 'a0001-20261121T090000000Z';
    await s.upload(id, 'images', Readable.from([Buffer.from('i')]));
    await s.upload(id, 'files', Readable.from([Buffer.from('f')]));
    await s.commit(sampleManifest({ jobId: s.jobId, snapshotId: id }));
    await s.deleteObjects([id], ['images', 'files']);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `unit/${s.jobId}/` }));
    expect((listed.Contents ?? []).map((o) => o.Key)).toEqual([s.key(id, 'manifest')]);
  });
});
