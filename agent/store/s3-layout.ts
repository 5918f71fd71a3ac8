// Where a job's snapshots live in S3: only this file builds and takes apart keys, and its table is docs/reference.md's "S3 layout".
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

/** `<prefix>/` (empty for no prefix): each job is a "directory" right under it. */
export function jobsPrefix(location: S3Location): string {
  return location.prefix === '' ? '' : `${location.prefix}/`;
}

/** The job id of a common prefix `<prefix>/<jobId>/` that a delimited listing of jobsPrefix returns; undefined for none. */
export function jobIdOfPrefix(location: S3Location, commonPrefix: string): string | undefined {
  const base = jobsPrefix(location);
  const id = commonPrefix.startsWith(base) ? commonPrefix.slice(base.length, -1) : '';
  return id === '' ? undefined : id;
}

/** `<prefix>/<jobId>/snapshots/` */
export function jobSnapshotsPrefix(location: S3Location, jobId: string): string {
  return `${join(location.prefix, jobId, 'snapshots')}/`;
}

/** The snapshot id of a key under the job's snapshots prefix: `<prefix>/<jobId>/snapshots/<snapshotId>/...`. */
export function snapshotIdOfKey(location: S3Location, jobId: string, key: string): string {
  return key.slice(jobSnapshotsPrefix(location, jobId).length).split('/')[0]!;
}

/** Whether a key of a snapshot is its manifest. */
export function isManifestKey(key: string): boolean {
  return key.endsWith(`/${SnapshotObject.manifest}`);
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

/** The pack id of a key under the job's packs prefix (its last part). */
export function packIdOfKey(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
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

/** `<prefix>/<jobId>/reports/`: the job's attempt reports. */
export function jobReportsPrefix(location: S3Location, jobId: string): string {
  return `${join(location.prefix, jobId, 'reports')}/`;
}

/** `<prefix>/<jobId>/reports/aNNNN.json`: what one attempt did and saved. */
export function jobReportKey(location: S3Location, jobId: string, attempt: number): string {
  return `${jobReportsPrefix(location, jobId)}a${String(attempt).padStart(4, '0')}.json`;
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

/** The placeholders of the layout's keys, for the table below. */
const PLACEHOLDER: S3Location = { bucket: 'BUCKET', prefix: 'PREFIX' };

/** One kind of object: its key with placeholders (as built by the functions above) and what it is (markdown). */
export interface LayoutEntry {
  readonly key: string;
  readonly meaning: string;
}

/** Every kind of object spotsnap writes, under `s3://BUCKET/PREFIX/`. */
export const S3_LAYOUT: readonly LayoutEntry[] = [
  { key: packKey(PLACEHOLDER, 'JOB_ID', 'PACK_ID'), meaning: "up to 8 MiB of chunks each, shared by the job's snapshots" },
  { key: snapshotObjectKey(PLACEHOLDER, 'JOB_ID', 'SNAPSHOT_ID', 'criuLog'), meaning: "CRIU's log of the dump" },
  { key: snapshotObjectKey(PLACEHOLDER, 'JOB_ID', 'SNAPSHOT_ID', 'manifest'), meaning: 'written last: the snapshot exists once this does' },
  { key: `${jobReportsPrefix(PLACEHOLDER, 'JOB_ID')}aNNNN.json`, meaning: 'what attempt NNNN did and saved (see [Reports](commands.md#reports))' },
  { key: jobEndedKey(PLACEHOLDER, 'JOB_ID'), meaning: 'written when the task ended, with any code: no snapshot until then is restored' },
  { key: jobFinishedKey(PLACEHOLDER, 'JOB_ID'), meaning: 'written when the task succeeded (its packs are deleted then)' },
  { key: doctorProbeKey(PLACEHOLDER, 'UUID'), meaning: 'a probe `spotsnap doctor` writes and deletes at once' },
];

/** What the placeholders of S3_LAYOUT stand for (markdown). */
export const S3_LAYOUT_PLACEHOLDERS: ReadonlyArray<{ placeholder: string; meaning: string }> = [
  { placeholder: 'JOB_ID', meaning: 'The job id: `SPOTSNAP_JOB_ID` or `AWS_BATCH_JOB_ID`, with `:INDEX` for a child of an array job.' },
  {
    placeholder: 'SNAPSHOT_ID',
    meaning: `\`aNNNN-YYYYMMDDTHHMMSSmmmZ\` (attempt, then UTC time, e.g. \`${newSnapshotId(2, new Date(Date.UTC(2026, 10, 21, 9, 15, 0, 123)))}\`), so ids sort oldest to newest.`,
  },
  {
    placeholder: 'PACK_ID',
    meaning:
      '32 random hex digits: a pack is found through the manifests, never by its name. Only chunks of committed snapshots are referenced again, so a pack no manifest refers to (left by a checkpoint that failed) is never needed and `spotsnap prune` removes it.',
  },
];
