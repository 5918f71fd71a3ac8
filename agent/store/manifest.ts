// The snapshot manifest: its versioned schema, the digest of the command it resumes, and the chunks it names.
import { createHash } from 'node:crypto';
import type { TaskPipeKeys } from '../../criu-bridge/criu-options.ts';
import type { SnapshotObjectName } from './s3-layout.ts';

export const MANIFEST_SCHEMA_VERSION = 6;
export const MANIFEST_KIND = 'spotsnap-snapshot';

/** One object of a snapshot, with what it must hash to. */
export interface ManifestObject {
  name: SnapshotObjectName;
  bytes: number;
  sha256: string;
}

/** A file the task holds that came unchanged with the image: not copied, but checked before a restore. */
export interface ReferencedFile {
  path: string;
  bytes: number;
  mtimeMs: number;
}

/**
 * A content-addressed chunk, and where it is stored: at `offset` in the job's pack `pack`, as `bytes` raw bytes,
 * or, with `encoding: 'zstd'`, as a zstd frame of `storedBytes` bytes. `digest` is the hash of the raw bytes
 * whatever the encoding (`blake3:hex` or `sha256:hex`, agent/transfer/chunk-digest.ts), so the same content is
 * the same chunk.
 */
export interface ChunkRef {
  digest: string;
  bytes: number;
  pack: string;
  offset: number;
  encoding?: 'zstd';
  storedBytes?: number;
}

/** The bytes a chunk takes in its pack. */
export function storedLength(ref: ChunkRef): number {
  return ref.storedBytes ?? ref.bytes;
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
  transfer: { uploadedBytes: number; uploadedChunks: number; uploadedPacks: number; totalBytes: number; totalChunks: number; storedBytes: number };
  /** How long the dump, the upload after it and the whole checkpoint took; how long the task was frozen. */
  timings: { dumpMs: number; uploadMs: number; totalMs: number; frozenMs: number };
}

/** The largest chunk a manifest may name: a restore holds a few chunks in memory at once. */
export const MAX_CHUNK_BYTES = 64 << 20;

/** SHA-256 of the command line, so that a snapshot only resumes the command it was taken from. */
export function commandDigest(command: readonly string[]): string {
  return createHash('sha256').update(JSON.stringify(command)).digest('hex');
}

/** Every chunk a manifest refers to, with where it is: S3 has them all once the manifest is committed. */
export function chunkRefs(manifest: Manifest): ChunkRef[] {
  return [...manifest.images.flatMap((f) => f.chunks), ...manifest.files.chunks, ...manifest.outside.files.chunks];
}
