// Parses a snapshot manifest's JSON text, and refuses anything it cannot fully read, naming the field.
import { CHUNK_DIGEST_PATTERN } from '../transfer/chunk-digest.ts';
import type { SnapshotObjectName } from './s3-layout.ts';
import { MANIFEST_KIND, MANIFEST_SCHEMA_VERSION, MAX_CHUNK_BYTES, type ChunkedStream, type ChunkRef, type Manifest } from './manifest.ts';

/** A manifest that cannot be used, with the reason. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

const SHA256 = /^[0-9a-f]{64}$/;
/**
 * The schema before chunk digests named their algorithm: the same manifest but for each chunk's `sha256` (its
 * SHA-256, hex), read as the digest `sha256:hex`. So a job whose snapshots an earlier agent took resumes, and
 * deduplicates against them, after the image is upgraded.
 */
const SHA256_CHUNKS_SCHEMA_VERSION = 5;
const PACK_ID = /^[0-9a-f]{32}$/;
const OBJECT_NAMES: readonly SnapshotObjectName[] = ['criuLog'];
/** CRIU names its image files like "pages-1.img"; nothing else may appear as an image file name. */
const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/;

/** Parses and validates a manifest's JSON text; every field is checked before any is used. */
export function parseManifest(text: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(`manifest is not JSON: ${(error as Error).message}`);
  }
  const m = record(value, 'manifest');
  if (m.kind !== MANIFEST_KIND) throw new ManifestError(`manifest kind is ${JSON.stringify(m.kind)}, expected "${MANIFEST_KIND}"`);
  if (typeof m.schemaVersion !== 'number' || !Number.isInteger(m.schemaVersion)) {
    throw new ManifestError(`manifest schemaVersion ${JSON.stringify(m.schemaVersion)} is not a whole number`);
  }
  if (m.schemaVersion !== MANIFEST_SCHEMA_VERSION && m.schemaVersion !== SHA256_CHUNKS_SCHEMA_VERSION) {
    throw new ManifestError(
      `manifest schema version ${m.schemaVersion} is not supported (this agent reads versions ${SHA256_CHUNKS_SCHEMA_VERSION} and ${MANIFEST_SCHEMA_VERSION}); ` +
        (m.schemaVersion > MANIFEST_SCHEMA_VERSION ? 'it was written by a newer spotsnap: upgrade the agent in the task image' : 'it is too old to restore'),
    );
  }
  const version = m.schemaVersion;
  const criu = record(m.criu, 'criu');
  const host = record(m.host, 'host');
  const task = record(m.task, 'task');
  const pipes = record(task.pipes, 'task.pipes');
  const timings = record(m.timings, 'timings');
  const objects = array(m.objects, 'objects').map((o, i) => {
    const obj = record(o, `objects[${i}]`);
    const name = obj.name as SnapshotObjectName;
    if (!OBJECT_NAMES.includes(name)) throw new ManifestError(`objects[${i}].name ${JSON.stringify(obj.name)} is unknown`);
    if (typeof obj.sha256 !== 'string' || !SHA256.test(obj.sha256)) throw new ManifestError(`objects[${i}].sha256 is not a SHA-256 hex digest`);
    return { name, bytes: count(obj.bytes, `objects[${i}].bytes`), sha256: obj.sha256 };
  });
  const images = array(m.images, 'images').map((f, i) => {
    const file = record(f, `images[${i}]`);
    return { name: pattern(file.name, IMAGE_NAME, `images[${i}].name`), ...chunked(file, `images[${i}]`, version) };
  });
  if (images.length === 0) throw new ManifestError('manifest lists no image files');
  if (new Set(images.map((f) => f.name)).size !== images.length) throw new ManifestError('manifest lists an image file twice');
  const files = chunked(record(m.files, 'files'), 'files', version);
  const outside = record(m.outside, 'outside');
  const batch = record(m.batch, 'batch');
  const relay = m.credentialsRelay === null ? null : record(m.credentialsRelay, 'credentialsRelay');
  const transfer = record(m.transfer, 'transfer');
  const notice = m.notice === null ? null : record(m.notice, 'notice');
  return {
    kind: MANIFEST_KIND,
    schemaVersion: MANIFEST_SCHEMA_VERSION,
    jobId: text_(m.jobId, 'jobId'),
    attempt: count(m.attempt, 'attempt'),
    snapshotId: text_(m.snapshotId, 'snapshotId'),
    createdAt: text_(m.createdAt, 'createdAt'),
    agentVersion: text_(m.agentVersion, 'agentVersion'),
    criu: { version: text_(criu.version, 'criu.version'), versionNumber: count(criu.versionNumber, 'criu.versionNumber') },
    host: { kernel: text_(host.kernel, 'host.kernel'), arch: text_(host.arch, 'host.arch') },
    task: {
      commandSha256: pattern(task.commandSha256, SHA256, 'task.commandSha256'),
      pipes: {
        stdout: pattern(pipes.stdout, /^pipe:\[\d+\]$/, 'task.pipes.stdout'),
        stderr: pattern(pipes.stderr, /^pipe:\[\d+\]$/, 'task.pipes.stderr'),
        status: pattern(pipes.status, /^pipe:\[\d+\]$/, 'task.pipes.status'),
      },
      runMs: count(task.runMs, 'task.runMs'),
      cpuMs: count(task.cpuMs, 'task.cpuMs'),
      interruptions: count(task.interruptions, 'task.interruptions'),
    },
    paths: array(m.paths, 'paths').map((p, i) => pattern(p, /^\/.+/, `paths[${i}]`)),
    checkpointKind: oneOf(m.checkpointKind, ['final', 'background'] as const, 'checkpointKind'),
    notice: notice ? { action: text_(notice.action, 'notice.action'), time: text_(notice.time, 'notice.time') } : null,
    images,
    files,
    outside: {
      roots: array(outside.roots, 'outside.roots').map((p, i) => pattern(p, /^\/(?!(proc|sys)(\/|$)).+/, `outside.roots[${i}]`)),
      files: chunked(record(outside.files, 'outside.files'), 'outside.files', version),
      referenced: array(outside.referenced, 'outside.referenced').map((f, i) => {
        const file = record(f, `outside.referenced[${i}]`);
        return {
          path: pattern(file.path, /^\/.+/, `outside.referenced[${i}].path`),
          bytes: count(file.bytes, `outside.referenced[${i}].bytes`),
          mtimeMs: count(file.mtimeMs, `outside.referenced[${i}].mtimeMs`),
        };
      }),
    },
    batch: {
      jobId: batch.jobId === null ? null : text_(batch.jobId, 'batch.jobId'),
      arrayIndex: batch.arrayIndex === null ? null : count(batch.arrayIndex, 'batch.arrayIndex'),
    },
    credentialsRelay: relay
      ? { port: count(relay.port, 'credentialsRelay.port'), token: pattern(relay.token, /^[0-9a-f]{32,128}$/, 'credentialsRelay.token') }
      : null,
    objects,
    transfer: {
      uploadedBytes: count(transfer.uploadedBytes, 'transfer.uploadedBytes'),
      uploadedChunks: count(transfer.uploadedChunks, 'transfer.uploadedChunks'),
      uploadedPacks: count(transfer.uploadedPacks, 'transfer.uploadedPacks'),
      totalBytes: count(transfer.totalBytes, 'transfer.totalBytes'),
      totalChunks: count(transfer.totalChunks, 'transfer.totalChunks'),
      storedBytes: count(transfer.storedBytes, 'transfer.storedBytes'),
    },
    timings: {
      dumpMs: count(timings.dumpMs, 'timings.dumpMs'),
      uploadMs: count(timings.uploadMs, 'timings.uploadMs'),
      totalMs: count(timings.totalMs, 'timings.totalMs'),
      frozenMs: count(timings.frozenMs, 'timings.frozenMs'),
    },
  };
}

/** A chunk list whose sizes add up to the stream's size. */
function chunked(value: Record<string, unknown>, where: string, schemaVersion: number): ChunkedStream {
  const chunks = array(value.chunks, `${where}.chunks`).map((c, i) => {
    const chunk = record(c, `${where}.chunks[${i}]`);
    const bytes = count(chunk.bytes, `${where}.chunks[${i}].bytes`);
    if (bytes > MAX_CHUNK_BYTES) throw new ManifestError(`${where}.chunks[${i}].bytes ${bytes} is above the ${MAX_CHUNK_BYTES} bytes a chunk may have`);
    const ref: ChunkRef = {
      digest:
        schemaVersion === SHA256_CHUNKS_SCHEMA_VERSION
          ? `sha256:${pattern(chunk.sha256, SHA256, `${where}.chunks[${i}].sha256`)}`
          : pattern(chunk.digest, CHUNK_DIGEST_PATTERN, `${where}.chunks[${i}].digest`),
      bytes,
      pack: pattern(chunk.pack, PACK_ID, `${where}.chunks[${i}].pack`),
      offset: count(chunk.offset, `${where}.chunks[${i}].offset`),
    };
    if (chunk.encoding !== undefined || chunk.storedBytes !== undefined) {
      oneOf(chunk.encoding, ['zstd'] as const, `${where}.chunks[${i}].encoding`);
      const storedBytes = count(chunk.storedBytes, `${where}.chunks[${i}].storedBytes`);
      if (storedBytes > MAX_CHUNK_BYTES)
        throw new ManifestError(`${where}.chunks[${i}].storedBytes ${storedBytes} is above the ${MAX_CHUNK_BYTES} bytes a chunk may have`);
      ref.encoding = 'zstd';
      ref.storedBytes = storedBytes;
    }
    return ref;
  });
  const bytes = count(value.bytes, `${where}.bytes`);
  const sum = chunks.reduce((s, c) => s + c.bytes, 0);
  if (sum !== bytes) throw new ManifestError(`${where}: its chunks add up to ${sum} bytes, not ${bytes}`);
  return { bytes, chunks };
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], where: string): T {
  if (!allowed.includes(value as T)) throw new ManifestError(`${where} ${JSON.stringify(value)} is not one of ${allowed.join(', ')}`);
  return value as T;
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ManifestError(`${where} is not an object`);
  return value as Record<string, unknown>;
}

function array(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new ManifestError(`${where} is not a list`);
  return value;
}

function text_(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') throw new ManifestError(`${where} is not a non-empty string`);
  return value;
}

function count(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new ManifestError(`${where} is not a whole number >= 0`);
  return value;
}

function pattern(value: unknown, re: RegExp, where: string): string {
  if (typeof value !== 'string' || !re.test(value)) throw new ManifestError(`${where} ${JSON.stringify(value)} is not of the form ${re}`);
  return value;
}
