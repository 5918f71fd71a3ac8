// The snapshot manifest: its versioned schema, and a parser that refuses anything it cannot fully read.
import type { TaskPipeKeys } from './task-process.ts';
import type { SnapshotObjectName } from './s3-layout.ts';

export const MANIFEST_SCHEMA_VERSION = 1;
export const MANIFEST_KIND = 'spotsnap-snapshot';

/** One object of a snapshot, with what it must hash to. */
export interface ManifestObject {
  name: SnapshotObjectName;
  bytes: number;
  sha256: string;
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
  };
  /** The directories captured in files.tar. */
  paths: string[];
  notice: { action: string; time: string } | null;
  objects: ManifestObject[];
  timings: { dumpMs: number; uploadMs: number; totalMs: number };
}

/** A manifest that cannot be used, with the reason. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

const SHA256 = /^[0-9a-f]{64}$/;
const OBJECT_NAMES: readonly SnapshotObjectName[] = ['images', 'files', 'criuLog'];

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
  for (const required of ['images', 'files'] as const) {
    if (!objects.some((o) => o.name === required)) throw new ManifestError(`manifest lists no "${required}" object`);
  }
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
    },
    paths: array(m.paths, 'paths').map((p, i) => pattern(p, /^\/.+/, `paths[${i}]`)),
    notice: notice ? { action: text_(notice.action, 'notice.action'), time: text_(notice.time, 'notice.time') } : null,
    objects,
    timings: {
      dumpMs: count(timings.dumpMs, 'timings.dumpMs'),
      uploadMs: count(timings.uploadMs, 'timings.uploadMs'),
      totalMs: count(timings.totalMs, 'timings.totalMs'),
    },
  };
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
