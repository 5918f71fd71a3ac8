// The fast S3 stand-in answers the agent's own S3 calls across its processes: checksums checked, ranges, listings, deletes, whole objects only.
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client, putPackObject, SnapshotStore } from '../agent/store/snapshot-store.ts';
import { deleteKeys, listAll } from '../agent/store/s3-objects.ts';
import { getRangeDirect } from '../agent/transfer/direct-range-get.ts';
import { emulatorClient } from '../test/support/s3-client.ts';
import { stubAgentS3Env } from '../test/support/agent-s3-env.ts';
import { s3Error } from '../test/support/s3-error.ts';
import { seededBytes } from '../test/support/seeded-bytes.ts';
import { fileNameOfKey } from './fast-s3-keys.ts';
import { startFastS3, type FastS3 } from './fast-s3-server.ts';

const bucket = 'fast-bucket';
const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'fast-s3-test-'));
const bucketDir = path.join(dir, bucket);
let server: FastS3;
let client: S3Client;

beforeAll(async () => {
  // Two processes: a request may land on either, so every read below also checks what the other one wrote.
  server = await startFastS3({ dir, workers: 2, buckets: [bucket] });
  stubAgentS3Env(server.endpoint);
  // As the agent builds its client.
  client = createS3Client(process.env);
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const stored = (key: string) => readFileSync(path.join(bucketDir, fileNameOfKey(key)));
const temporaries = () => readdirSync(bucketDir).filter((name) => name.startsWith('.'));
const getAll = async (key: string) => Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToByteArray());

async function rangeDirect(key: string, offset: number, bytes: number): Promise<Buffer> {
  let pieces: Buffer[] = [];
  await getRangeDirect(client, bucket, key, offset, bytes, {
    restart: () => {
      pieces = [];
    },
    write: (piece) => void pieces.push(Buffer.from(piece)),
  });
  return Buffer.concat(pieces);
}

/** A raw request to the stand-in, for what the SDK would never send. */
function raw(method: string, target: string, headers: http.OutgoingHttpHeaders, body?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${server.endpoint}${target}`, { method, headers }, (res) => {
      const pieces: Buffer[] = [];
      res.on('data', (piece: Buffer) => pieces.push(piece));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(pieces).toString('utf8') }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

describe('the fast S3 stand-in', () => {
  it('stores a pack as the agent writes it (unsigned, CRC-32) and serves ranges of it to the direct reader', async () => {
    const store = new SnapshotStore(client, { bucket, prefix: 'p' }, 'job-1');
    const data = seededBytes('fast-s3/pack', 5 << 20);
    // In three parts, as a pack of chunks goes: the server sees one body.
    await store.putPack('pack-1', [data.subarray(0, 1 << 20), data.subarray(1 << 20, 3 << 20), data.subarray(3 << 20)], zlib.crc32(data));
    const { objects } = await listAll(client, bucket, 'p/job-1/packs/');
    expect(objects.map((o) => [o.key, o.bytes])).toEqual([[objects[0]!.key, data.length]]);
    const packKey = objects[0]!.key;
    expect(packKey.endsWith('pack-1')).toBe(true);
    expect(sha(stored(packKey))).toBe(sha(data));
    for (const [offset, bytes] of [
      [0, data.length],
      [1, 100],
      [(1 << 20) - 3, (2 << 20) + 7],
      [data.length - 1, 1],
    ] as const) {
      expect(sha(await rangeDirect(packKey, offset, bytes))).toBe(sha(data.subarray(offset, offset + bytes)));
    }
    await expect(rangeDirect(packKey, data.length - 10, 20)).rejects.toThrow(/does not match the manifest's size|range/);
  });

  it('answers GET, ranged GET and HEAD through the SDK with the ETag of the PUT', async () => {
    const data = seededBytes('fast-s3/object', 300_000);
    const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'dir/a b+c.bin', Body: data, ChecksumAlgorithm: 'SHA256' }));
    expect(put.ChecksumSHA256).toBe(createHash('sha256').update(data).digest('base64'));
    expect((await getAll('dir/a b+c.bin')).equals(data)).toBe(true);
    const ranged = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/a b+c.bin', Range: 'bytes=1000-1999' }));
    expect(ranged.ContentRange).toBe(`bytes 1000-1999/${data.length}`);
    expect(Buffer.from(await ranged.Body!.transformToByteArray()).equals(data.subarray(1000, 2000))).toBe(true);
    const suffix = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/a b+c.bin', Range: 'bytes=-10' }));
    expect(Buffer.from(await suffix.Body!.transformToByteArray()).equals(data.subarray(-10))).toBe(true);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'dir/a b+c.bin' }));
    expect(head).toMatchObject({ ContentLength: data.length, ETag: put.ETag });
    expect(await s3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'dir/a b+c.bin', Range: `bytes=${data.length}-` })))).toMatchObject({
      name: 'InvalidRange',
      status: 416,
    });
    expect(await s3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'missing' })))).toMatchObject({ name: 'NoSuchKey', status: 404 });
    expect(await s3Error(client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'missing' })))).toMatchObject({ status: 404 });
    expect(await s3Error(client.send(new GetObjectCommand({ Bucket: 'no-such-bucket', Key: 'k' })))).toMatchObject({ name: 'NoSuchBucket', status: 404 });
  });

  it('undoes aws-chunked bodies and checks their trailing checksum', async () => {
    const data = seededBytes('fast-s3/streamed', 3 << 20);
    // A stream body makes the SDK send aws-chunked framing with an x-amz-checksum-crc32 trailer.
    await emulatorClient(server.endpoint).send(
      new PutObjectCommand({ Bucket: bucket, Key: 'streamed', Body: Readable.from([data]), ContentLength: data.length }),
    );
    expect(sha(stored('streamed'))).toBe(sha(data));
    const body = Buffer.from('hello');
    const crc = (value: number) => {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32BE(value >>> 0);
      return bytes.toString('base64');
    };
    const framed = (trailer: string) => Buffer.from(`5\r\nhello\r\n0\r\nx-amz-checksum-crc32:${trailer}\r\n\r\n`);
    const headers = (length: number) => ({
      authorization: 'AWS4-HMAC-SHA256 any',
      'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      'content-encoding': 'aws-chunked',
      'x-amz-trailer': 'x-amz-checksum-crc32',
      'x-amz-decoded-content-length': '5',
      'content-length': length,
    });
    const bad = framed(crc(zlib.crc32(body) ^ 1));
    expect(await raw('PUT', `/${bucket}/trailed`, headers(bad.length), bad)).toMatchObject({
      status: 400,
      body: expect.stringContaining('<Code>BadDigest</Code>'),
    });
    expect(existsSync(path.join(bucketDir, 'trailed'))).toBe(false);
    const good = framed(crc(zlib.crc32(body)));
    expect(await raw('PUT', `/${bucket}/trailed`, headers(good.length), good)).toMatchObject({ status: 200 });
    expect(stored('trailed').toString()).toBe('hello');
  });

  it('refuses a body whose checksum does not match, and stores nothing of it', async () => {
    const data = seededBytes('fast-s3/bad', 2 << 20);
    expect(await s3Error(putPackObject(client, bucket, 'bad/crc', [data], zlib.crc32(data) ^ 1, { mode: 'none' }))).toMatchObject({
      name: 'BadDigest',
      status: 400,
    });
    const wrongSha = createHash('sha256').update('other').digest('base64');
    expect(
      await s3Error(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'bad/sha', Body: data, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: wrongSha }))),
    ).toMatchObject({ name: 'BadDigest', status: 400 });
    const wrongMd5 = createHash('md5').update('other').digest('base64');
    expect(await s3Error(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'bad/md5', Body: data, ContentMD5: wrongMd5 })))).toMatchObject({
      name: 'BadDigest',
      status: 400,
    });
    expect((await listAll(client, bucket, 'bad/')).objects).toEqual([]);
    expect(temporaries()).toEqual([]);
  });

  it('refuses a request without a signature, as S3 does', async () => {
    expect(await raw('GET', `/${bucket}?list-type=2`, {})).toMatchObject({ status: 403, body: expect.stringContaining('<Code>AccessDenied</Code>') });
  });

  it('lists keys in UTF-8 order in pages, with prefixes under a delimiter and start-after', async () => {
    const keys = [...Array.from({ length: 23 }, (_, i) => `l/x/${String(i).padStart(3, '0')}`), 'l/y/\u00e9', 'l/y/z', 'l/top', 'l/\u{1f600}'];
    for (const key of keys) await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
    const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect((await listAll(client, bucket, 'l/')).objects.map((o) => o.key)).toEqual(sorted);
    const paged: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'l/', MaxKeys: 7, ContinuationToken: token }));
      paged.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      pages++;
    } while (token);
    expect({ paged, pages }).toEqual({ paged: sorted, pages: 4 });
    expect(await listAll(client, bucket, 'l/', '/')).toMatchObject({
      objects: [{ key: 'l/top', bytes: 5 }, { key: 'l/\u{1f600}' }],
      prefixes: ['l/x/', 'l/y/'],
    });
    const firstTwo = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'l/', Delimiter: '/', MaxKeys: 2 }));
    expect(firstTwo.Contents?.map((o) => o.Key)).toEqual(['l/top']);
    expect(firstTwo.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['l/x/']);
    const rest = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: 'l/', Delimiter: '/', ContinuationToken: firstTwo.NextContinuationToken }),
    );
    expect([...(rest.CommonPrefixes ?? []).map((p) => p.Prefix), ...(rest.Contents ?? []).map((o) => o.Key)]).toEqual(['l/y/', 'l/\u{1f600}']);
    const after = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'l/x/', StartAfter: 'l/x/020' }));
    expect(after.Contents?.map((o) => o.Key)).toEqual(['l/x/021', 'l/x/022']);
  });

  it('deletes many keys in batches of 1,000 and one key alone', async () => {
    const keys = Array.from({ length: 1500 }, (_, i) => `many/${String(i).padStart(4, '0')}`);
    // Seeded behind the API: each object is a file of the bucket's directory.
    for (const key of keys) writeFileSync(path.join(bucketDir, fileNameOfKey(key)), key);
    expect((await listAll(client, bucket, 'many/')).objects).toHaveLength(1500);
    const batches: number[] = [];
    expect(await deleteKeys(client, bucket, keys, (deleted) => batches.push(deleted))).toBe(1500);
    expect(batches).toEqual([1000, 1500]);
    expect((await listAll(client, bucket, 'many/')).objects).toEqual([]);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'one', Body: 'x' }));
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'one' }));
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'one' }));
    expect(await s3Error(client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'one' })))).toMatchObject({ status: 404 });
  });

  it('never lets a read see part of an object while PUTs of the same key race it', async () => {
    const versions = [seededBytes('fast-s3/race-a', 3 << 20), seededBytes('fast-s3/race-b', 3 << 20)];
    const hashes = versions.map(sha);
    const store = new SnapshotStore(client, { bucket, prefix: 'race' }, 'job');
    await store.putPack('p', [versions[0]!], zlib.crc32(versions[0]!));
    const key = (await listAll(client, bucket, 'race/')).objects[0]!.key;
    const puts = Array.from({ length: 12 }, (_, i) => store.putPack('p', [versions[i % 2]!], zlib.crc32(versions[i % 2]!)));
    const reads = Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? rangeDirect(key, 0, 3 << 20) : getAll(key)));
    const [, seen] = await Promise.all([Promise.all(puts), Promise.all(reads)]);
    for (const data of seen) expect(hashes).toContain(sha(data));
    expect(hashes).toContain(sha(stored(key)));
    expect(temporaries()).toEqual([]);
  });

  it('creates only absent keys with If-None-Match: *, one winner of a race', async () => {
    const attempts = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => client.send(new PutObjectCommand({ Bucket: bucket, Key: 'once', Body: `writer ${i}`, IfNoneMatch: '*' }))),
    );
    expect(attempts.filter((a) => a.status === 'fulfilled')).toHaveLength(1);
    for (const a of attempts) if (a.status === 'rejected') expect(a.reason).toMatchObject({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    expect(stored('once').toString()).toMatch(/^writer \d$/);
    expect(temporaries()).toEqual([]);
  });

  it('creates and heads buckets', async () => {
    await client.send(new CreateBucketCommand({ Bucket: 'second-bucket' }));
    await client.send(new HeadBucketCommand({ Bucket: 'second-bucket' }));
    expect(await s3Error(client.send(new CreateBucketCommand({ Bucket: 'second-bucket' })))).toMatchObject({ name: 'BucketAlreadyOwnedByYou', status: 409 });
    expect(await s3Error(client.send(new HeadBucketCommand({ Bucket: 'absent-bucket' })))).toMatchObject({ status: 404 });
    expect(await s3Error(client.send(new PutObjectCommand({ Bucket: 'absent-bucket', Key: 'k', Body: 'x' })))).toMatchObject({
      name: 'NoSuchBucket',
      status: 404,
    });
  });
});
