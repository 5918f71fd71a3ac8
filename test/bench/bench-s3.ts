// The benchmark's S3 side: timed uploads of raw bytes, and the manifests and objects a spotsnap run left.
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Manifest } from '../../agent/store/manifest.ts';
import { parseManifest } from '../../agent/store/manifest-parser.ts';
import { deleteKeys, listAll } from '../../agent/store/s3-objects.ts';
import type { emulatorClient } from '../support/s3-emulator.ts';

type Client = ReturnType<typeof emulatorClient>;

/** Uploads `body` as one object in 8 MiB parts, six at a time; resolves to the milliseconds it took. */
export async function upload(client: Client, bucket: string, key: string, body: Readable): Promise<number> {
  const started = performance.now();
  await new Upload({ client, params: { Bucket: bucket, Key: key, Body: body }, partSize: 8 << 20, queueSize: 6 }).done();
  return performance.now() - started;
}

/** `bytes` bytes of incompressible data, one random 16 MiB block over and over. */
export function repeated(bytes: number): Readable {
  const block = randomBytes(16 << 20);
  async function* gen() {
    for (let sent = 0; sent < bytes; sent += block.length) yield block.subarray(0, Math.min(block.length, bytes - sent));
  }
  return Readable.from(gen());
}

/** Deletes every object under `prefix`. */
export async function deletePrefix(client: Client, bucket: string, prefix: string): Promise<void> {
  await deleteKeys(
    client,
    bucket,
    (await listAll(client, bucket, prefix)).objects.map((o) => o.key),
  );
}

/** The job's committed manifests, oldest first. */
export async function committedManifests(client: Client, bucket: string, jobId: string): Promise<Manifest[]> {
  const { objects } = await listAll(client, bucket, `snapshots/${jobId}/snapshots/`);
  const keys = objects
    .map((o) => o.key)
    .filter((k) => k.endsWith('manifest.json'))
    .sort();
  return Promise.all(
    keys.map(async (Key) => parseManifest(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body!.transformToString())),
  );
}
