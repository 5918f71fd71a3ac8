import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { createBucket, emulatorClient } from '../test/support/s3-emulator.ts';
import { deleteKeys, listAll } from './s3-objects.ts';

const endpoint = inject('s3Endpoint');
const client = emulatorClient(endpoint);
const bucket = 'unit-s3-objects';

beforeAll(() => createBucket(endpoint, bucket).catch(() => undefined));

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
