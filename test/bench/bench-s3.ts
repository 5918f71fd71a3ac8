// The benchmark's S3 side: the manifests and objects a spotsnap run left, and deleting them.
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Manifest } from '../../agent/store/manifest.ts';
import { parseManifest } from '../../agent/store/manifest-parser.ts';
import { deleteKeys, listAll } from '../../agent/store/s3-objects.ts';
import type { emulatorClient } from '../support/s3-emulator.ts';

type Client = ReturnType<typeof emulatorClient>;

/** Deletes the given keys. */
export async function deleteKeysIn(client: Client, bucket: string, keys: readonly string[]): Promise<void> {
  await deleteKeys(client, bucket, [...keys]);
}

/** Deletes every object under `prefix`. */
export async function deletePrefix(client: Client, bucket: string, prefix: string): Promise<void> {
  await deleteKeysIn(
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
