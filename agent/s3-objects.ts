// Listing and deleting S3 objects in pages: every listing follows continuation tokens, every delete batches by 1,000.
import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';

export interface StoredObject {
  key: string;
  bytes: number;
  lastModified: Date;
}

/** Every object under `prefix` and, with a delimiter, the "directories" just below it. */
export async function listAll(client: S3Client, bucket: string, prefix: string, delimiter?: string): Promise<{ objects: StoredObject[]; prefixes: string[] }> {
  const objects: StoredObject[] = [];
  const prefixes: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token }));
    for (const o of page.Contents ?? []) objects.push({ key: o.Key!, bytes: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) });
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return { objects, prefixes };
}

/** Deletes the keys, 1,000 to a request (the S3 limit); `onBatch` hears how many are gone so far. */
export async function deleteKeys(client: S3Client, bucket: string, keys: readonly string[], onBatch?: (deleted: number) => void): Promise<number> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000).map((Key) => ({ Key }));
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
    onBatch?.(i + batch.length);
  }
  return keys.length;
}
