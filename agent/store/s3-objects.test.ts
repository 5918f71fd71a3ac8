import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emulatorClient } from '../../test/support/s3-client.ts';
import { useS3StandIn } from '../../test/support/unit-s3.ts';
import { DeleteObjectsError, deleteKeys, listAll } from './s3-objects.ts';

const bucket = 'unit-s3-objects';
const { client } = await useS3StandIn(bucket);

describe('listAll and deleteKeys', () => {
  it('list past one page and delete in batches of 1,000', async () => {
    const prefix = `p-${randomUUID().slice(0, 8)}/`;
    const keys = Array.from({ length: 1203 }, (_, i) => `${prefix}${i % 2 ? 'a' : 'b'}/k${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((Key) => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }))));
    }
    const listed = await listAll(client, bucket, prefix);
    expect(listed.objects.map((o) => o.key).sort()).toEqual([...keys].sort());
    expect((await listAll(client, bucket, prefix, '/')).prefixes.sort()).toEqual([`${prefix}a/`, `${prefix}b/`]);
    const batches: number[] = [];
    expect(await deleteKeys(client, bucket, keys, (n) => batches.push(n))).toBe(1203);
    expect(batches).toEqual([1000, 1203]);
    expect((await listAll(client, bucket, prefix)).objects).toEqual([]);
  });
});

/**
 * A stand-in for S3's DeleteObjects that refuses the keys under `locked/`, as S3 does for keys the credentials
 * may not delete: HTTP 200 and an <Error> per such key in the DeleteResult, even for a quiet request.
 */
async function refusingDeleteServer(): Promise<{ url: string; requests: string[][]; close: () => Promise<void> }> {
  const requests: string[][] = [];
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const keys = [
        ...Buffer.concat(parts)
          .toString('utf8')
          .matchAll(/<Key>([^<]*)<\/Key>/g),
      ].map((m) => m[1]!);
      requests.push(keys);
      const errors = keys
        .filter((k) => k.startsWith('locked/'))
        .map((k) => `<Error><Key>${k}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`);
      res.writeHead(200, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${errors.join('')}</DeleteResult>`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('deleteKeys when S3 refuses some keys', () => {
  let stand: Awaited<ReturnType<typeof refusingDeleteServer>>;
  beforeAll(async () => {
    stand = await refusingDeleteServer();
  });
  afterAll(() => stand.close());

  it('throws naming the first refused keys and their codes, and sends no later batch', async () => {
    const keys = [
      ...Array.from({ length: 1000 }, (_, i) => `ok/k${String(i).padStart(4, '0')}`),
      'ok/last-batch',
      ...Array.from({ length: 7 }, (_, i) => `locked/k${i}`),
      ...Array.from({ length: 1000 }, (_, i) => `later/k${i}`),
    ];
    const batches: number[] = [];
    const error = await deleteKeys(emulatorClient(stand.url), 'b', keys, (n) => batches.push(n)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeleteObjectsError);
    expect((error as DeleteObjectsError).failures).toHaveLength(7);
    expect((error as Error).message).toMatch(
      /^S3 did not delete 7 of 1000 objects in bucket b: locked\/k0 \(AccessDenied: Access Denied\), locked\/k1 .*locked\/k4 \(AccessDenied: Access Denied\), and 2 more; 1000 objects of earlier requests were deleted/,
    );
    expect(batches).toEqual([1000]);
    expect(stand.requests.map((r) => r.length)).toEqual([1000, 1000]);
  });
});
