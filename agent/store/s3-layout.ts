// Where a job's snapshots live in S3; the README's "S3 layout" section documents this, and only this file builds keys.
import { randomBytes } from 'node:crypto';
import type { S3Location } from '../config/config.ts';

/** The objects of one snapshot, by the name the manifest gives them. Its data lives in the job's packs. */
export const SnapshotObject = {
  criuLog: 'criu-dump.log',
  manifest: 'manifest.json',
} as const;

export type SnapshotObjectName = keyof typeof SnapshotObject;

function join(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

/** `<prefix>/<jobId>/snapshots/` */
export function jobSnapshotsPrefix(location: S3Location, jobId: string): string {
  return `${join(location.prefix, jobId, 'snapshots')}/`;
}

/** `<prefix>/<jobId>/snapshots/<snapshotId>/<object>` */
export function snapshotObjectKey(location: S3Location, jobId: string, snapshotId: string, object: SnapshotObjectName): string {
  return `${jobSnapshotsPrefix(location, jobId)}${snapshotId}/${SnapshotObject[object]}`;
}

/** `<prefix>/<jobId>/packs/`: objects of several content-addressed chunks each, shared by all the job's snapshots. */
export function jobPacksPrefix(location: S3Location, jobId: string): string {
  return `${join(location.prefix, jobId, 'packs')}/`;
}

/** `<prefix>/<jobId>/packs/<packId>` */
export function packKey(location: S3Location, jobId: string, packId: string): string {
  return `${jobPacksPrefix(location, jobId)}${packId}`;
}

/** A new pack's id: 32 random hex digits (a pack's chunks are found by the manifest, never by the pack's name). */
export function newPackId(): string {
  return randomBytes(16).toString('hex');
}

/** `<prefix>/<jobId>/finished.json`: written when the task succeeded; its snapshots' data is gone by then. */
export function jobFinishedKey(location: S3Location, jobId: string): string {
  return join(location.prefix, jobId, 'finished.json');
}

/**
 * `<prefix>/<jobId>/ended.json`: written when the task ended in an attempt (with any exit code): the job's snapshots
 * from that attempt or before are never restored, so a retry after a failure starts from scratch, as it would
 * without spotsnap.
 */
export function jobEndedKey(location: S3Location, jobId: string): string {
  return join(location.prefix, jobId, 'ended.json');
}

/** The attempt number a snapshot id starts with (`a0002-...` is 2). */
export function attemptOfSnapshotId(snapshotId: string): number {
  return Number(/^a(\d{4})-/.exec(snapshotId)?.[1] ?? 0);
}

/** `<prefix>/<jobId>/reports/aNNNN.json`: what one attempt did and saved. */
export function jobReportKey(location: S3Location, jobId: string, attempt: number): string {
  return join(location.prefix, jobId, 'reports', `a${String(attempt).padStart(4, '0')}.json`);
}

/** `<prefix>/.spotsnap-doctor-<id>`: the probe `spotsnap doctor` writes and deletes at once. */
export function doctorProbeKey(location: S3Location, id: string): string {
  return join(location.prefix, `.spotsnap-doctor-${id}`);
}

/** Snapshot ids sort by attempt, then time: `a0002-20261121T091500123Z`. */
export function newSnapshotId(attempt: number, now: Date): string {
  const stamp = now.toISOString().replace(/[-:.]/g, '');
  return `a${String(attempt).padStart(4, '0')}-${stamp}`;
}

/** The snapshot id of a manifest key under the job's prefix, or undefined for any other key. */
export function snapshotIdOfManifestKey(location: S3Location, jobId: string, key: string): string | undefined {
  const prefix = jobSnapshotsPrefix(location, jobId);
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length).split('/');
  return rest.length === 2 && rest[1] === SnapshotObject.manifest && /^a\d{4}-\d{8}T\d{9}Z$/.test(rest[0]!) ? rest[0] : undefined;
}
