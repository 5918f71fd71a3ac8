import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { sampleManifest } from '../../test/support/sample-manifest.ts';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { useS3StandIn } from '../../test/support/unit-s3.ts';
import { ChunkUploader, type KnownChunks } from '../transfer/chunk-uploader.ts';
import { chunkedStream, downloadImages, planPackRanges } from '../restore/chunk-downloader.ts';
import { ContentChunker } from '../transfer/content-chunker.ts';
import type { ChunkRef } from './manifest.ts';
import { ChecksumMismatchError, SnapshotStore } from './snapshot-store.ts';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const bucket = 'unit-snapshot-store';
const { client } = await useS3StandIn(bucket);
const store = (jobId = `job-${randomUUID()}`) => new SnapshotStore(client, { bucket, prefix: 'unit' }, jobId);

async function collect(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function keys(prefix: string): Promise<string[]> {
  const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((o) => o.Key!);
}

/** Chunks and uploads `data` as a checkpoint would; `known` then learns its chunks, as a commit teaches it. */
async function chunked(s: SnapshotStore, data: Buffer, known: KnownChunks = new Map()) {
  const uploader = new ChunkUploader(s, known, 3);
  const chunker = new ContentChunker();
  const refs: ChunkRef[] = [];
  for (let i = 0; i < data.length; i += 1 << 20) await chunker.push(data.subarray(i, i + (1 << 20)), uploader.addingTo(refs));
  await chunker.flush(uploader.addingTo(refs));
  const transfer = await uploader.drain();
  for (const ref of refs) known.set(ref.digest, ref);
  return { refs, transfer };
}

const packKeyOf = (s: SnapshotStore, ref: ChunkRef) => `unit/${s.jobId}/packs/${ref.pack}`;

describe('SnapshotStore against the S3 emulator', () => {
  it('stores chunks once, several to a pack: a second upload of the same data sends only what changed', async () => {
    const s = store();
    // Seeded: the same cuts on every run, so the bounds below are checked against one known layout.
    const data = seededBytes('second-upload/original', 24 << 20);
    const known: KnownChunks = new Map();
    const first = await chunked(s, data, known);
    expect(first.transfer.uploadedBytes).toBe(data.length);
    // About 16 chunks of 1.5 MiB on average travel in 3 or 4 packs of at most 8 MiB, each a stored object.
    const packs = new Set(first.refs.map((r) => r.pack));
    expect(first.transfer.uploadedPacks).toBe(packs.size);
    expect(packs.size).toBeLessThan(first.refs.length / 2);
    expect((await keys(`unit/${s.jobId}/packs/`)).sort()).toEqual([...packs].map((p) => `unit/${s.jobId}/packs/${p}`).sort());
    const changed = Buffer.from(data);
    seededBytes('second-upload/changed', 1 << 20).copy(changed, 12 << 20);
    const second = await chunked(s, changed, known);
    expect(second.transfer.totalBytes).toBe(data.length);
    expect(second.transfer.uploadedBytes).toBeLessThan(data.length / 3);
    expect(new Set(second.refs.map((r) => r.pack)).size).toBeGreaterThan(1); // old packs and new ones
    expect(Buffer.concat(await Promise.all(second.refs.map((r) => s.getChunk(r)))).equals(changed)).toBe(true);
  });

  it('never counts a chunk as known before a commit: a failed upload leaves nothing to refer to later', async () => {
    const s = store();
    const known: KnownChunks = new Map();
    const uploader = new ChunkUploader(s, known, 1);
    await uploader.add(seededBytes('failed-upload', 1000));
    await uploader.drain();
    expect(known.size).toBe(0);
  });

  it('packs a chunk seen twice in one checkpoint once', async () => {
    const s = store();
    const uploader = new ChunkUploader(s, new Map(), 2);
    const chunk = seededBytes('seen-twice', 5000);
    const [a, b] = [await uploader.add(chunk), await uploader.add(chunk)];
    const transfer = await uploader.drain();
    expect(b).toEqual(a);
    expect(transfer).toMatchObject({ totalChunks: 2, uploadedChunks: 1, uploadedBytes: 5000, uploadedPacks: 1 });
  });

  it('reassembles image files at their offsets and streams in order', async () => {
    const s = store();
    const a = seededBytes('reassemble/pages', 9 << 20);
    const b = seededBytes('reassemble/core', 700);
    const images = [
      { name: 'pages-1.img', bytes: a.length, chunks: (await chunked(s, a)).refs },
      { name: 'core-1.img', bytes: b.length, chunks: (await chunked(s, b)).refs },
    ];
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-images-'));
    expect(await downloadImages(s, images, dir, 3)).toBe(a.length + b.length);
    // Chunks that lie back to back in a pack are read together.
    expect(planPackRanges(images).length).toBeLessThan(images[0]!.chunks.length);
    expect((await readFile(path.join(dir, 'pages-1.img'))).equals(a)).toBe(true);
    expect((await readFile(path.join(dir, 'core-1.img'))).equals(b)).toBe(true);
    expect((await collect(chunkedStream(s, images[0]!.chunks, 2))).equals(a)).toBe(true);
  });

  it('refuses a chunk whose bytes changed in S3', async () => {
    const s = store();
    const data = seededBytes('tampered', 5000);
    const { refs } = await chunked(s, data);
    const tampered = Buffer.from(data);
    tampered[100]! ^= 1;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: packKeyOf(s, refs[0]!), Body: tampered }));
    await expect(s.getChunk(refs[0]!)).rejects.toThrow(ChecksumMismatchError);
    await expect(collect(chunkedStream(s, refs))).rejects.toThrow(ChecksumMismatchError);
  });

  it('refuses an image chunk that changed or shrank in S3', async () => {
    const s = store();
    const data = seededBytes('shrank', 5000);
    const { refs } = await chunked(s, data);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: packKeyOf(s, refs[0]!), Body: data.subarray(0, 4000) }));
    await expect(s.readChunkInto(refs[0]!, Buffer.alloc(data.length))).rejects.toThrow(/a short read \(\d+ bytes\)/);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: packKeyOf(s, refs[0]!), Body: Buffer.concat([data.subarray(1), data.subarray(0, 1)]) }));
    const dir = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-images-'));
    await expect(downloadImages(s, [{ name: 'pages-1.img', bytes: data.length, chunks: refs }], dir)).rejects.toThrow(ChecksumMismatchError);
  });

  it('lists only committed snapshots, newest first', async () => {
    const s = store();
    const ids = ['a0001-20261121T090000000Z', 'a0002-20261121T091000000Z', 'a0002-20261121T090500000Z'];
    for (const id of ids) await s.commit(sampleManifest({ jobId: s.jobId, snapshotId: id }));
    await s.putObject('a0003-20261121T092000000Z', 'criuLog', Buffer.from('a torn snapshot has no manifest'));
    expect(await s.committedSnapshotIds()).toEqual(['a0002-20261121T091000000Z', 'a0002-20261121T090500000Z', 'a0001-20261121T090000000Z']);
    expect(await store().committedSnapshotIds()).toEqual([]);
  });

  it('refuses a manifest of another job stored under this job', async () => {
    const s = store('job-a');
    const id = 'a0001-20261121T090000000Z';
    await s.commit(sampleManifest({ jobId: 'job-b', snapshotId: id }));
    await expect(s.readManifest(id)).rejects.toThrow(/names job "job-b".*not job "job-a".*refusing it/);
  });

  it('deletes all packs of a finished job and keeps manifests and logs', async () => {
    const s = store();
    const id = 'a0001-20261121T090000000Z';
    await chunked(s, seededBytes('finished-job', 3 << 20));
    await s.putObject(id, 'criuLog', Buffer.from('log'));
    await s.commit(sampleManifest({ jobId: s.jobId, snapshotId: id }));
    expect(await s.deleteAllPacks()).toBeGreaterThan(0);
    expect((await keys(`unit/${s.jobId}/`)).sort()).toEqual([s.key(id, 'criuLog'), s.key(id, 'manifest')]);
  });
});
