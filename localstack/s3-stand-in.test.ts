// The S3 stand-in answers the SDK as S3 does: checksums checked, ranges, listings in pages, batch deletes, honest errors.
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { putPackObject } from '../agent/store/snapshot-store.ts';
import { deleteKeys, listAll } from '../agent/store/s3-objects.ts';
import { emulatorClient } from '../test/support/s3-client.ts';
import { s3Error } from '../test/support/s3-error.ts';
import { seededBytes } from '../test/support/seeded-bytes.ts';
import { S3StandIn } from './s3-stand-in.ts';
import { utf8Compare } from './s3-stand-in-listing.ts';

const standIn = new S3StandIn();
let endpoint: string;
let client: S3Client;
const bucket = 'stand-in';
const data = seededBytes('stand-in/object', 100_000);

beforeAll(async () => {
  endpoint = await standIn.start();
  client = emulatorClient(endpoint);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});
afterAll(() => standIn.stop());

const read = async (input: { Key: string; Range?: string }) =>
  Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, ...input }))).Body!.transformToByteArray());

describe('S3StandIn objects', () => {
  it('stores what a PUT sends with its checksum and reads it back whole, by range, and by HEAD', async () => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'dir/a b+c.bin', Body: data, ChecksumAlgorithm: 'SHA256' }));
    expect((await read({ Key: 'dir/a b+c.bin' })).equals(data)).toBe(true);
    expect((await read({ Key: 'dir/a b+c.bin', Range: 'bytes=1000-1999' })).equals(data.subarray(1000, 2000))).toBe(true);
    expect((await read({ Key: 'dir/a b+c.bin', Range: 'bytes=-10' })).equals(data.subarray(-10))).toBe(true);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'dir/a b+c.bin' }));
    expect(head.ContentLength).toBe(data.length);
    expect(head.ETag).toBe(`"${createHash('md5').update(data).digest('hex')}"`);
    expect(standIn.object(bucket, 'dir/a b+c.bin')?.checksums.sha256).toBe(createHash('sha256').update(data).digest('base64'));
    expect(await s3Error(read({ Key: 'dir/a b+c.bin', Range: `bytes=${data.length}-` }))).toMatchObject({ name: 'InvalidRange', status: 416 });
  });

  it('takes a pack as spotsnap writes it (unsigned payload, its CRC-32) and refuses one whose CRC-32 is wrong', async () => {
    await putPackObject(client, bucket, 'packs/good', [data.subarray(0, 1000), data.subarray(1000)], zlib.crc32(data), { mode: 'none' });
    expect(standIn.object(bucket, 'packs/good')?.data.equals(data)).toBe(true);
    const bad = await s3Error(putPackObject(client, bucket, 'packs/bad', [data], zlib.crc32(data) ^ 1, { mode: 'none' }));
    expect(bad).toMatchObject({ name: 'BadDigest', status: 400 });
    expect(bad.message).toMatch(/CRC32 you specified did not match/);
    expect(standIn.object(bucket, 'packs/bad')).toBeUndefined();
  });

  it('refuses a SHA-256 that does not match the body', async () => {
    const wrong = seededBytes('stand-in/other', 32).toString('base64');
    const refused = client.send(new PutObjectCommand({ Bucket: bucket, Key: 'sha', Body: data, ChecksumAlgorithm: 'SHA256', ChecksumSHA256: wrong }));
    expect(await s3Error(refused)).toMatchObject({ name: 'BadDigest', status: 400 });
  });

  it('decodes an aws-chunked upload and checks the checksum in its trailer', async () => {
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'streamed',
        Body: Readable.from([data.subarray(0, 70_000), data.subarray(70_000)]),
        ContentLength: data.length,
        ChecksumAlgorithm: 'CRC32',
      }),
    );
    expect(standIn.object(bucket, 'streamed')?.data.equals(data)).toBe(true);
    expect(standIn.object(bucket, 'streamed')?.checksums.crc32).toBeDefined();
  });

  it('answers NoSuchKey, NoSuchBucket and NotImplemented as S3 writes them', async () => {
    expect(await s3Error(read({ Key: 'missing' }))).toMatchObject({ name: 'NoSuchKey', status: 404 });
    expect(await s3Error(client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'missing' })))).toMatchObject({ status: 404 });
    expect(await s3Error(client.send(new PutObjectCommand({ Bucket: 'no-such-bucket', Key: 'k', Body: 'x' })))).toMatchObject({
      name: 'NoSuchBucket',
      status: 404,
    });
    expect(await s3Error(client.send(new CreateBucketCommand({ Bucket: bucket })))).toMatchObject({ name: 'BucketAlreadyOwnedByYou', status: 409 });
    const multipart = await s3Error(client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'big' })));
    expect(multipart).toMatchObject({ name: 'NotImplemented', status: 501 });
    expect(multipart.message).toMatch(/does not serve POST \/stand-in\/big\?uploads/);
  });
});

describe('S3StandIn listings and deletes', () => {
  const keys = Array.from({ length: 1203 }, (_, i) => `l/${i % 3 === 0 ? 'x' : 'y'}/k${String(i).padStart(4, '0')}`);

  beforeAll(async () => {
    for (const key of keys) standIn.put(bucket, key, Buffer.from(key));
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'l/top', Body: 'top' }));
  });

  it('lists in pages of max-keys, following continuation tokens to every key in order', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'l/', MaxKeys: 250, ContinuationToken: token }));
      expect(page.KeyCount).toBe(page.Contents?.length);
      seen.push(...page.Contents!.map((o) => o.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    expect(seen).toEqual([...keys, 'l/top'].sort());
    expect((await listAll(client, bucket, 'l/')).objects).toHaveLength(keys.length + 1);
  });

  it('groups keys under a delimiter into common prefixes, each counted as one entry', async () => {
    const first = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'l/', Delimiter: '/', MaxKeys: 2 }));
    expect(first.Contents?.map((o) => o.Key)).toEqual(['l/top']);
    expect(first.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['l/x/']);
    expect([first.KeyCount, first.IsTruncated]).toEqual([2, true]);
    const rest = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'l/', Delimiter: '/', ContinuationToken: first.NextContinuationToken }));
    expect(rest.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['l/y/']);
    expect([rest.Contents, rest.IsTruncated]).toEqual([undefined, false]);
    const after = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'l/y/', StartAfter: keys.at(-1) }));
    expect(after.Contents ?? []).toEqual([]);
  });

  it('deletes in batches of 1,000 with DeleteObjects', async () => {
    expect(await deleteKeys(client, bucket, keys)).toBe(keys.length);
    expect((await listAll(client, bucket, 'l/')).objects.map((o) => o.key)).toEqual(['l/top']);
  });

  it('orders keys by their UTF-8 bytes, as S3 does', () => {
    const sorted = ['\u{10000}', '\uffff', 'z', 'A'].sort(utf8Compare);
    expect(sorted).toEqual(['A', 'z', '\uffff', '\u{10000}']);
    expect(sorted.map((k) => Buffer.from(k))).toEqual([...sorted].map((k) => Buffer.from(k)).sort(Buffer.compare));
  });
});

describe('S3StandIn on the wire', () => {
  it('refuses a body that does not match its Content-MD5 or signed x-amz-content-sha256', async () => {
    const md5 = await fetch(`${endpoint}/${bucket}/raw`, { method: 'PUT', body: 'abc', headers: { 'content-md5': Buffer.alloc(16).toString('base64') } });
    expect(md5.status).toBe(400);
    expect(await md5.text()).toMatch(/<Code>BadDigest<\/Code>/);
    const sha = await fetch(`${endpoint}/${bucket}/raw`, { method: 'PUT', body: 'abc', headers: { 'x-amz-content-sha256': '0'.repeat(64) } });
    expect(await sha.text()).toMatch(/<Code>XAmzContentSHA256Mismatch<\/Code>/);
    expect(standIn.object(bucket, 'raw')).toBeUndefined();
  });
});
