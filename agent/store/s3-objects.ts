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

/** How many of a batch's failed keys an error names. */
const FAILED_KEYS_NAMED = 5;

/** Some keys of a DeleteObjects request were not deleted; `failures` has every one of that request. */
export class DeleteObjectsError extends Error {
  readonly failures: ReadonlyArray<{ key: string; code: string; message: string }>;
  constructor(bucket: string, attempted: number, failures: DeleteObjectsError['failures'], deletedBefore: number) {
    const named = failures.slice(0, FAILED_KEYS_NAMED).map((f) => `${f.key} (${f.code}${f.message ? `: ${f.message}` : ''})`);
    const more = failures.length > FAILED_KEYS_NAMED ? `, and ${failures.length - FAILED_KEYS_NAMED} more` : '';
    super(
      `S3 did not delete ${failures.length} of ${attempted} objects in bucket ${bucket}: ${named.join(', ')}${more}; ` +
        `${deletedBefore} objects of earlier requests were deleted and no later request was sent. ` +
        'Check that the credentials may s3:DeleteObject there and that no object lock or legal hold keeps them',
    );
    this.name = 'DeleteObjectsError';
    this.failures = failures;
  }
}

/**
 * Deletes the keys, 1,000 to a request (the S3 limit); `onBatch` hears how many are gone so far. A quiet
 * DeleteObjects still answers each key it did not delete: the first such request throws a DeleteObjectsError.
 */
export async function deleteKeys(client: S3Client, bucket: string, keys: readonly string[], onBatch?: (deleted: number) => void): Promise<number> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000).map((Key) => ({ Key }));
    const answer = await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }));
    const failures = (answer.Errors ?? []).map((e) => ({ key: e.Key ?? '(no key named)', code: e.Code ?? 'no code', message: e.Message ?? '' }));
    if (failures.length > 0) throw new DeleteObjectsError(bucket, batch.length, failures, i);
    onBatch?.(i + batch.length);
  }
  return keys.length;
}
