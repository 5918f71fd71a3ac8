// The snapshot manifest: its versioned schema, and a parser that refuses anything it cannot fully read.
import type { TaskPipeKeys } from '../task/task-process.ts';
import type { ReferencedFile } from '../task/outside-files.ts';
import type { SnapshotObjectName } from './s3-layout.ts';

export const MANIFEST_SCHEMA_VERSION = 4;
export const MANIFEST_KIND = 'spotsnap-snapshot';

/** One object of a snapshot, with what it must hash to. */
export interface ManifestObject {
  name: SnapshotObjectName;
  bytes: number;
  sha256: string;
}

/** A content-addressed chunk, and where it is stored: `bytes` bytes at `offset` in the job's pack `pack`. */
export interface ChunkRef {
  sha256: string;
  bytes: number;
  pack: string;
  offset: number;
}

/** A stream stored as the concatenation of chunks. */
export interface ChunkedStream {
  bytes: number;
  chunks: ChunkRef[];
}

/** One CRIU image file. */
export interface ImageFile extends ChunkedStream {
  name: string;
}

export interface Manifest {
  kind: typeof MANIFEST_KIND;
  schemaVersion: typeof MANIFEST_SCHEMA_VERSION;
  jobId: string;
  attempt: number;
  snapshotId: string;
  createdAt: string;
  agentVersion: string;
  criu: { version: string; versionNumber: number };
  host: { kernel: string; arch: string };
  task: {
    /** SHA-256 of the command line: a snapshot only resumes the same command, whose arguments are not stored. */
    commandSha256: string;
    /** The task's output and status pipes as CRIU recorded them. */
    pipes: TaskPipeKeys;
    /** Wall time the task had run at this checkpoint, over all its attempts. */
    runMs: number;
    /** CPU time its processes had used at this checkpoint, over all its attempts. */
    cpuMs: number;
    /** Final checkpoints in the task's history, this one included when it is final. */
    interruptions: number;
  };
  /** The directories whose files are captured, as one tar stream, in `files`. */
  paths: string[];
  /** 'final' at a notice; 'background' for a periodic checkpoint of a task that ran on. */
  checkpointKind: 'final' | 'background';
  notice: { action: string; time: string } | null;
  /** CRIU's image files. */
  images: ImageFile[];
  /** The files under `paths`, as a tar stream. */
  files: ChunkedStream;
  /**
   * Files the task needs from outside `paths` (agent/task/outside-files.ts): what it created or changed, as a tar
   * stream whose entries lie under `roots`, and what came unchanged with the image, checked before a restore.
   */
  outside: { roots: string[]; files: ChunkedStream; referenced: ReferencedFile[] };
  /** The AWS Batch job and array index the snapshot was taken in (null outside AWS Batch). */
  batch: { jobId: string | null; arrayIndex: number | null };
  /** The loopback credentials relay the task was given (agent/task/credentials-relay.ts), or null. */
  credentialsRelay: { port: number; token: string } | null;
  /** Whole objects of the snapshot (the CRIU log). */
  objects: ManifestObject[];
  /** What this checkpoint sent: bytes of chunks S3 did not have yet (in how many packs), and how many bytes it referenced in all. */
  transfer: { uploadedBytes: number; uploadedChunks: number; uploadedPacks: number; totalBytes: number; totalChunks: number };
  /** How long the dump, the upload after it and the whole checkpoint took; how long the task was frozen. */
  timings: { dumpMs: number; uploadMs: number; totalMs: number; frozenMs: number };
}

/** A manifest that cannot be used, with the reason. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

const SHA256 = /^[0-9a-f]{64}$/;
const PACK_ID = /^[0-9a-f]{32}$/;
/** The largest chunk a manifest may name: a restore holds a few chunks in memory at once. */
export const MAX_CHUNK_BYTES = 64 << 20;
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
  if (m.schemaVersion !== MANIFEST_SCHEMA_VERSION) {
    throw new ManifestError(
      `manifest schema version ${m.schemaVersion} is not supported (this agent reads version ${MANIFEST_SCHEMA_VERSION}); ` +
        (m.schemaVersion > MANIFEST_SCHEMA_VERSION ? 'it was written by a newer spotsnap: upgrade the agent in the task image' : 'it is too old to restore'),
    );
  }
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
    return { name: pattern(file.name, IMAGE_NAME, `images[${i}].name`), ...chunked(file, `images[${i}]`) };
  });
  if (images.length === 0) throw new ManifestError('manifest lists no image files');
  if (new Set(images.map((f) => f.name)).size !== images.length) throw new ManifestError('manifest lists an image file twice');
  const files = chunked(record(m.files, 'files'), 'files');
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
      files: chunked(record(outside.files, 'outside.files'), 'outside.files'),
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
function chunked(value: Record<string, unknown>, where: string): ChunkedStream {
  const chunks = array(value.chunks, `${where}.chunks`).map((c, i) => {
    const chunk = record(c, `${where}.chunks[${i}]`);
    const bytes = count(chunk.bytes, `${where}.chunks[${i}].bytes`);
    if (bytes > MAX_CHUNK_BYTES) throw new ManifestError(`${where}.chunks[${i}].bytes ${bytes} is above the ${MAX_CHUNK_BYTES} bytes a chunk may have`);
    return {
      sha256: pattern(chunk.sha256, SHA256, `${where}.chunks[${i}].sha256`),
      bytes,
      pack: pattern(chunk.pack, PACK_ID, `${where}.chunks[${i}].pack`),
      offset: count(chunk.offset, `${where}.chunks[${i}].offset`),
    };
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

/** Every chunk a manifest refers to, with where it is: S3 has them all once the manifest is committed. */
export function chunkRefs(manifest: Manifest): ChunkRef[] {
  return [...manifest.images.flatMap((f) => f.chunks), ...manifest.files.chunks, ...manifest.outside.files.chunks];
}
