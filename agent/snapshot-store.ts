// Reads and writes a job's snapshots in S3: content-addressed chunks checked on every read, commit by manifest.
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Encryption, S3Location } from './config.ts';
import { parseManifest, type Manifest, type ManifestObject } from './manifest.ts';
import {
  chunkKey,
  jobFinishedKey,
  jobReportKey,
  jobChunksPrefix,
  jobSnapshotsPrefix,
  snapshotIdOfManifestKey,
  snapshotObjectKey,
  type SnapshotObjectName,
} from './s3-layout.ts';
import { deleteKeys, listAll } from './s3-objects.ts';

/** An object whose bytes do not hash to what the manifest says. */
export class ChecksumMismatchError extends Error {
  constructor(key: string, expected: string, actual: string, bytes: number) {
    super(`${key}: SHA-256 ${actual} (${bytes} bytes) does not match the manifest's ${expected}`);
    this.name = 'ChecksumMismatchError';
  }
}

/** Builds the S3 client from the SDK's standard environment (endpoint, credentials, region). */
export function createS3Client(env: NodeJS.ProcessEnv = process.env): S3Client {
  const customEndpoint = Boolean(env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL);
  return new S3Client({
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    // Emulators on 127.0.0.1 cannot serve bucket-named hosts.
    forcePathStyle: customEndpoint,
    followRegionRedirects: true,
    maxAttempts: 5,
    // Every chunk read is checked against the SHA-256 its manifest names (which is stronger than S3's stored
    // checksum, and is the same hash): the SDK need not hash each response a second time.
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The encryption and checksum parameters every write carries. */
function writeParams(encryption: Encryption) {
  return {
    // S3 checks the SHA-256 of what arrives; chunks send their own, which is also their key.
    ChecksumAlgorithm: 'SHA256' as const,
    ...(encryption.mode === 'none' ? {} : { ServerSideEncryption: encryption.mode }),
    ...(encryption.mode === 'aws:kms' && encryption.kmsKeyId ? { SSEKMSKeyId: encryption.kmsKeyId } : {}),
  };
}

export class SnapshotStore {
  readonly client: S3Client;
  readonly location: S3Location;
  readonly jobId: string;
  readonly encryption: Encryption;

  constructor(client: S3Client, location: S3Location, jobId: string, encryption: Encryption = { mode: 'none' }) {
    this.client = client;
    this.location = location;
    this.jobId = jobId;
    this.encryption = encryption;
  }

  key(snapshotId: string, object: SnapshotObjectName): string {
    return snapshotObjectKey(this.location, this.jobId, snapshotId, object);
  }

  /**
   * Stores one chunk under its SHA-256. The same digest goes with the request, so S3 itself refuses the
   * chunk if a byte changed on the way.
   */
  async putChunk(sha256: string, data: Buffer, signal?: AbortSignal): Promise<void> {
    const command = new PutObjectCommand({
      Bucket: this.location.bucket,
      Key: chunkKey(this.location, this.jobId, sha256),
      Body: data,
      ContentLength: data.length,
      ...writeParams(this.encryption),
      ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
    });
    // The request signature covers the payload's SHA-256; the chunk's key already is that hash, so the
    // signer need not read every byte again.
    command.middlewareStack.add(
      (next) => async (args) => {
        (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = sha256;
        return next(args);
      },
      { step: 'build', name: 'spotsnapKnownPayloadHash' },
    );
    await this.client.send(command, { abortSignal: signal });
  }

  /**
   * Reads one chunk into `into` (at least `bytes` long) and checks its size and SHA-256 before returning the
   * part of `into` it fills: nothing of a chunk that fails the check reaches the caller.
   */
  async readChunkInto(sha256: string, bytes: number, into: Buffer): Promise<Buffer> {
    const key = chunkKey(this.location, this.jobId, sha256);
    const response = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: key }));
    const hash = createHash('sha256');
    let offset = 0;
    const body = response.Body as Readable;
    for await (const piece of body) {
      const data = piece as Buffer;
      if (offset + data.length > bytes) {
        body.destroy();
        throw new ChecksumMismatchError(key, sha256, 'unknown (the object is longer than the manifest says)', offset + data.length);
      }
      hash.update(data);
      data.copy(into, offset);
      offset += data.length;
    }
    const actual = hash.digest('hex');
    if (actual !== sha256 || offset !== bytes) throw new ChecksumMismatchError(key, sha256, actual, offset);
    return into.subarray(0, bytes);
  }

  /** Reads one chunk into a buffer of its own, checked against its SHA-256. */
  async getChunk(sha256: string, bytes: number): Promise<Buffer> {
    return this.readChunkInto(sha256, bytes, Buffer.allocUnsafe(bytes));
  }

  /** Deletes every chunk of the job (after it finished: its snapshots are of no more use). */
  async deleteAllChunks(): Promise<number> {
    const { objects } = await listAll(this.client, this.location.bucket, jobChunksPrefix(this.location, this.jobId));
    return deleteKeys(this.client, this.location.bucket, objects.map((o) => o.key));
  }

  /** Writes a small JSON object with the encryption and checksum every write carries. */
  private async putJson(key: string, value: unknown): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.location.bucket,
        Key: key,
        Body: `${JSON.stringify(value, null, 2)}\n`,
        ContentType: 'application/json',
        ...writeParams(this.encryption),
      }),
    );
  }

  /** Marks the job finished (the task succeeded), for `spotsnap ls` and `spotsnap prune`. */
  async markFinished(record: { attempt: number; exitCode: number; finishedAt: string }): Promise<void> {
    await this.putJson(jobFinishedKey(this.location, this.jobId), record);
  }

  /** Writes an attempt's report next to the job's snapshots. */
  async putReport(attempt: number, report: object): Promise<void> {
    await this.putJson(jobReportKey(this.location, this.jobId, attempt), report);
  }

  /** Writes a small whole object of a snapshot (the CRIU log). */
  async putObject(snapshotId: string, name: SnapshotObjectName, data: Buffer): Promise<ManifestObject> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.location.bucket, Key: this.key(snapshotId, name), Body: data, ...writeParams(this.encryption) }),
    );
    return { name, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  }

  /** Writes the manifest: the snapshot exists for restores from this moment on. */
  async commit(manifest: Manifest): Promise<void> {
    await this.putJson(this.key(manifest.snapshotId, 'manifest'), manifest);
  }

  /** Ids of the job's committed snapshots (those with a manifest), newest first. */
  async committedSnapshotIds(): Promise<string[]> {
    const { objects } = await listAll(this.client, this.location.bucket, jobSnapshotsPrefix(this.location, this.jobId));
    const ids = objects.map((o) => snapshotIdOfManifestKey(this.location, this.jobId, o.key)).filter((id): id is string => id !== undefined);
    return ids.sort().reverse();
  }

  /** Reads and validates a manifest, and checks that it belongs to this job and snapshot. */
  async readManifest(snapshotId: string): Promise<Manifest> {
    const response = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: this.key(snapshotId, 'manifest') }));
    const manifest = parseManifest(await response.Body!.transformToString('utf8'));
    if (manifest.jobId !== this.jobId || manifest.snapshotId !== snapshotId) {
      throw new Error(
        `manifest of ${snapshotId} names job ${JSON.stringify(manifest.jobId)} snapshot ${JSON.stringify(manifest.snapshotId)}, ` +
          `not job ${JSON.stringify(this.jobId)} snapshot ${JSON.stringify(snapshotId)}: refusing it`,
      );
    }
    return manifest;
  }
}

