// A fast S3 stand-in started with discardOver checks every body as before but keeps no byte of the big ones: they list and HEAD with their size, a GET says why it cannot answer.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createS3Client, putPackObject } from '../agent/store/snapshot-store.ts';
import { listAll } from '../agent/store/s3-objects.ts';
import { getRangeDirect } from '../agent/transfer/direct-range-get.ts';
import { stubAgentS3Env } from '../test/support/agent-s3-env.ts';
import { s3Error } from '../test/support/s3-error.ts';
import { seededBytes } from '../test/support/seeded-bytes.ts';
import { fileNameOfKey } from './fast-s3-keys.ts';
import { startFastS3, type FastS3 } from './fast-s3-server.ts';

const bucket = 'discard-bucket';
const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'fast-s3-discard-test-'));
const fileOf = (key: string) => path.join(dir, bucket, fileNameOfKey(key));
const DISCARD_OVER = 1 << 20;
let server: FastS3;
let client: S3Client;

beforeAll(async () => {
  server = await startFastS3({ dir, workers: 2, buckets: [bucket], discardOver: DISCARD_OVER });
  stubAgentS3Env(server.endpoint);
  client = createS3Client(process.env);
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the fast S3 stand-in with discardOver', () => {
  it('takes a pack over the size as the agent sends it, keeps none of its bytes, lists and heads it with its size, and refuses to read it', async () => {
    const data = seededBytes('fast-s3-discard/pack', 3 << 20);
    await putPackObject(client, bucket, 'big/pack', [data.subarray(0, 1 << 20), data.subarray(1 << 20)], zlib.crc32(data), { mode: 'none' });
    expect((await listAll(client, bucket, 'big/')).objects.map((o) => [o.key, o.bytes])).toEqual([['big/pack', data.length]]);
    expect(await client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/pack' }))).toMatchObject({ ContentLength: data.length });
    const file = statSync(fileOf('big/pack'));
    expect(file.size).toBe(data.length);
    // Sparse: none of it written (a filesystem may still count a block or so for the file itself).
    expect(file.blocks * 512).toBeLessThan(64 << 10);
    expect(await s3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/pack' })))).toMatchObject({ name: 'NotImplemented', status: 501 });
    await expect(getRangeDirect(client, bucket, 'big/pack', 0, 100, { restart: () => undefined, write: () => undefined })).rejects.toThrow(
      /kept none of the bytes of this one/,
    );
  });

  it('drops a body of no announced length once it passes the size, keeping at most that much of it', async () => {
    const data = seededBytes('fast-s3-discard/chunked', 3 << 20);
    const status = await new Promise<number>((resolve, reject) => {
      // No content-length: Node sends the body chunked, as a stream of unknown length would go.
      const request = http.request(
        `${server.endpoint}/${bucket}/chunked/body`,
        { method: 'PUT', headers: { authorization: 'AWS4-HMAC-SHA256 test' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        },
      );
      request.on('error', reject);
      for (let at = 0; at < data.length; at += 256 << 10) request.write(data.subarray(at, at + (256 << 10)));
      request.end();
    });
    expect(status).toBe(200);
    const file = statSync(fileOf('chunked/body'));
    expect(file.size).toBe(data.length);
    expect(file.blocks * 512).toBeLessThanOrEqual(DISCARD_OVER + (64 << 10));
    expect(await s3Error(client.send(new GetObjectCommand({ Bucket: bucket, Key: 'chunked/body' })))).toMatchObject({ name: 'NotImplemented', status: 501 });
  });

  it('still refuses a body over the size whose checksum does not match, and lists nothing of it', async () => {
    const data = seededBytes('fast-s3-discard/bad', 2 << 20);
    expect(await s3Error(putPackObject(client, bucket, 'bad/pack', [data], zlib.crc32(data) ^ 1, { mode: 'none' }))).toMatchObject({
      name: 'BadDigest',
      status: 400,
    });
    expect((await listAll(client, bucket, 'bad/')).objects).toEqual([]);
  });

  it('keeps an object of the size or less whole, as a manifest is', async () => {
    const manifest = seededBytes('fast-s3-discard/manifest', DISCARD_OVER);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'small/manifest.json', Body: manifest, ChecksumAlgorithm: 'SHA256' }));
    expect(readFileSync(fileOf('small/manifest.json')).equals(manifest)).toBe(true);
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'small/manifest.json' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(manifest)).toBe(true);
  });

  it('refuses a discardOver that is not a whole number of bytes, naming it', async () => {
    await expect(startFastS3({ dir, discardOver: -1 })).rejects.toThrow(/discardOver must be a whole number of bytes, 0 or more, not -1/);
    await expect(startFastS3({ dir, discardOver: 1.5 })).rejects.toThrow(/not 1.5/);
  });
});
