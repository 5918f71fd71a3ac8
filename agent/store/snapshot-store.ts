// Reads and writes a job's snapshots in S3: packs of content-addressed chunks checked on every read, commit by manifest.
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import type { Encryption, S3Location } from '../config/config.ts';
import { getRangeDirect, type BodySink } from '../transfer/direct-range-get.ts';
import { putObjectDirect } from '../transfer/direct-object-put.ts';
import { S3_LIMITS, type S3Limits } from '../shared/limits.ts';
import { storedLength, type ChunkRef, type Manifest, type ManifestObject } from './manifest.ts';
import { parseManifest } from './manifest-parser.ts';
import {
  jobEndedKey,
  jobFinishedKey,
  jobReportKey,
  jobPacksPrefix,
  packKey,
  jobSnapshotsPrefix,
  snapshotIdOfManifestKey,
  snapshotObjectKey,
  type SnapshotObjectName,
} from './s3-layout.ts';
import { deleteKeys, listAll } from './s3-objects.ts';
import { sharedChunkWorkers } from '../transfer/chunk-workers.ts';
import { chunkDigest, digestAlgorithm } from '../transfer/chunk-digest.ts';

/** Stored bytes that are not what the manifest says. */
export class ChecksumMismatchError extends Error {
  constructor(where: string, expected: string, actual: string, bytes: number) {
    super(`${where}: ${actual} (${bytes} bytes) does not match ${expected}`);
    this.name = 'ChecksumMismatchError';
  }

  /** The same refusal, as a chunk worker worded it (it checks a chunk's hash where it decodes it). */
  static fromWorker(message: string): ChecksumMismatchError {
    const error = new ChecksumMismatchError('', '', '', 0);
    error.message = message;
    return error;
  }
}

/** Throws unless `data` hashes to the chunk's digest, by the digest's algorithm. */
export function verifyChunk(ref: ChunkRef, data: Buffer, where: string): void {
  verifyChunkDigest(ref, chunkDigest(data, digestAlgorithm(ref.digest)), data.length, where);
}

/** Throws unless a chunk's bytes, hashed as they arrived (`algorithm:hex`), are the chunk the manifest names. */
export function verifyChunkDigest(ref: ChunkRef, digest: string, bytes: number, where: string): void {
  if (digest !== ref.digest || bytes !== ref.bytes) {
    throw new ChecksumMismatchError(`${where} bytes ${ref.offset}+${ref.bytes}`, `the manifest's ${ref.digest}`, digest, bytes);
  }
}

/**
 * Builds the S3 client from the SDK's standard environment (endpoint, credentials, region). Every request is
 * bounded by `limits` (limits.ts): a connect timeout and an idle timeout on its socket, then the SDK's retries;
 * tests pass shorter limits.
 */
export function createS3Client(env: NodeJS.ProcessEnv = process.env, limits: S3Limits = S3_LIMITS): S3Client {
  const customEndpoint = Boolean(env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL);
  return new S3Client({
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    // Emulators on 127.0.0.1 cannot serve bucket-named hosts.
    forcePathStyle: customEndpoint,
    followRegionRedirects: true,
    maxAttempts: limits.maxAttempts,
    // The options of the SDK's Node HTTP handler. No total `requestTimeout`: a pack upload on a slow link may
    // take long while its bytes flow; the idle timeout ends a connection that went silent.
    requestHandler: { connectionTimeout: limits.connectTimeoutMs, socketTimeout: limits.socketIdleTimeoutMs },
    // Every chunk read is checked against the digest its manifest names (which is stronger than S3's stored
    // CRC-32): the SDK need not hash each response a second time.
    responseChecksumValidation: 'WHEN_REQUIRED',
    // No `Expect: 100-continue` (the SDK's default from 2 MB): every pack PUT would wait a round trip for the
    // server's go-ahead before its body, and with a few packs in flight those waits are idle connections. A
    // request S3 refuses (credentials, a missing bucket, found at start by `spotsnap doctor`) then wastes at
    // most one pack's bytes.
    expectContinueHeader: false,
  });
}

/**
 * The encryption and checksum parameters every write carries. S3 checks the checksum of what arrives: the SDK
 * computes a SHA-256 for small objects; packs bring the CRC-32 computed as they were filled.
 */
function writeParams(encryption: Encryption, checksum: 'SHA256' | 'CRC32' = 'SHA256') {
  return {
    ChecksumAlgorithm: checksum,
    ...(encryption.mode === 'none' ? {} : { ServerSideEncryption: encryption.mode }),
    ...(encryption.mode === 'aws:kms' && encryption.kmsKeyId ? { SSEKMSKeyId: encryption.kmsKeyId } : {}),
  };
}

/**
 * Writes an object as packs are written: with the encryption asked for, a CRC-32 that S3 checks, and an
 * unsigned payload. `spotsnap doctor` writes its probe this way too, so a server that refuses any of it is
 * found before a checkpoint needs it.
 */
export async function putPackObject(
  client: S3Client,
  bucket: string,
  key: string,
  parts: readonly Buffer[],
  crc32: number,
  encryption: Encryption,
  signal?: AbortSignal,
): Promise<void> {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32 >>> 0);
  await putObjectDirect(client, { Bucket: bucket, Key: key, ...writeParams(encryption, 'CRC32'), ChecksumCRC32: crc.toString('base64') }, parts, signal);
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
   * Stores one pack. S3 checks the CRC-32 that goes with it against what arrives, so a byte changed on the way
   * fails the upload; the payload itself is not signed (each chunk's digest in the manifest is checked at
   * every read), which spares hashing every byte once more.
   */
  /** Puts a pack whose bytes are `parts` one after the other (sent as they are, not joined), with their CRC-32. */
  async putPack(packId: string, parts: readonly Buffer[], crc32: number, signal?: AbortSignal): Promise<void> {
    await putPackObject(this.client, this.location.bucket, packKey(this.location, this.jobId, packId), parts, crc32, this.encryption, signal);
  }

  /**
   * Reads `bytes` bytes at `offset` of a pack into `sink`, straight from the socket (see direct-range-get.ts);
   * refuses any other length. The sink may be handed the same bytes again from the start if the SDK retries.
   */
  async readPackRange(packId: string, offset: number, bytes: number, sink: BodySink): Promise<void> {
    await getRangeDirect(this.client, this.location.bucket, packKey(this.location, this.jobId, packId), offset, bytes, sink);
  }

  /**
   * Reads one chunk's stored bytes into `into` (at least its stored length), then its raw bytes are checked
   * against its digest (after decompression on a worker thread, when it is compressed) before they are returned.
   */
  async readChunkInto(ref: ChunkRef, into: Buffer): Promise<Buffer> {
    const stored = storedLength(ref);
    let filled = 0;
    await this.readPackRange(ref.pack, ref.offset, stored, {
      restart: () => (filled = 0),
      write: (piece) => (filled += piece.copy(into, filled)),
    });
    const where = packKey(this.location, this.jobId, ref.pack);
    if (ref.encoding === 'zstd') {
      try {
        return await sharedChunkWorkers().decode(into.subarray(0, stored), 'zstd', ref.bytes, ref.digest, `${where} bytes ${ref.offset}+${stored}`);
      } catch (error) {
        throw ChecksumMismatchError.fromWorker(error instanceof Error ? error.message : String(error));
      }
    }
    const data = into.subarray(0, ref.bytes);
    verifyChunk(ref, data, where);
    return data;
  }

  /** Reads one chunk into a buffer of its own, checked against its digest. */
  async getChunk(ref: ChunkRef): Promise<Buffer> {
    return this.readChunkInto(ref, Buffer.allocUnsafe(storedLength(ref)));
  }

  /** Deletes every pack of the job (after it finished: its snapshots are of no more use). */
  async deleteAllPacks(): Promise<number> {
    const { objects } = await listAll(this.client, this.location.bucket, jobPacksPrefix(this.location, this.jobId));
    return deleteKeys(
      this.client,
      this.location.bucket,
      objects.map((o) => o.key),
    );
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

  /** Records that the task ended in this attempt: no later attempt restores a snapshot taken until then. */
  async markEnded(record: { attempt: number; exitCode: number; endedAt: string }): Promise<void> {
    await this.putJson(jobEndedKey(this.location, this.jobId), record);
  }

  /** The attempt in which the task last ended, or undefined when it never did. */
  async lastEndedAttempt(): Promise<number | undefined> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: jobEndedKey(this.location, this.jobId) }));
      const attempt = (JSON.parse(await response.Body!.transformToString('utf8')) as { attempt?: unknown }).attempt;
      if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) throw new Error(`ended.json names attempt ${JSON.stringify(attempt)}`);
      return attempt;
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw error;
    }
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
