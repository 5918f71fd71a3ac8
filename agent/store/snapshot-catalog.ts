// What is stored under a prefix: jobs, their snapshots (committed or incomplete) and their packs.
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Location } from '../config/config.ts';
import { chunkRefs, type Manifest } from './manifest.ts';
import { listAll, type StoredObject } from './s3-objects.ts';
import { isManifestKey, jobFinishedKey, jobIdOfPrefix, jobPacksPrefix, jobsPrefix, jobSnapshotsPrefix, packIdOfKey, snapshotIdOfKey } from './s3-layout.ts';
import { SnapshotStore } from './snapshot-store.ts';

export interface SnapshotEntry {
  jobId: string;
  snapshotId: string;
  /** committed: its manifest exists; incomplete: objects without a manifest (a checkpoint that did not finish). */
  state: 'committed' | 'incomplete';
  manifest?: Manifest;
  /** Why a manifest that exists could not be read. */
  unreadable?: string;
  /** Bytes of the task state it refers to (images and files), or of its own objects when incomplete. */
  bytes: number;
  lastModified: Date;
  objects: StoredObject[];
}

export interface JobEntry {
  jobId: string;
  snapshots: SnapshotEntry[];
  packs: StoredObject[];
  /**
   * Packs no committed manifest refers to: leftovers of checkpoints that failed. Empty while any committed
   * manifest of the job is unreadable: which packs that one refers to is not known, so none counts as orphan.
   */
  orphanPacks: StoredObject[];
  /** The job's finished.json, when its task succeeded. */
  finished?: StoredObject;
  lastModified: Date;
}

/** The job ids under the prefix (each is a "directory" holding snapshots/ or packs/). */
export async function listJobIds(client: S3Client, location: S3Location): Promise<string[]> {
  const { prefixes } = await listAll(client, location.bucket, jobsPrefix(location), '/');
  return prefixes
    .map((p) => jobIdOfPrefix(location, p))
    .filter((id): id is string => id !== undefined)
    .sort();
}

/** One job's snapshots, newest first, with its packs. */
export async function describeJob(client: S3Client, location: S3Location, jobId: string): Promise<JobEntry> {
  const store = new SnapshotStore(client, location, jobId);
  const [{ objects: snapshotObjects }, { objects: packs }, { objects: markers }] = await Promise.all([
    listAll(client, location.bucket, jobSnapshotsPrefix(location, jobId)),
    listAll(client, location.bucket, jobPacksPrefix(location, jobId)),
    listAll(client, location.bucket, jobFinishedKey(location, jobId)),
  ]);
  const finished = markers.find((o) => o.key === jobFinishedKey(location, jobId));
  const byId = new Map<string, StoredObject[]>();
  for (const o of snapshotObjects) {
    const id = snapshotIdOfKey(location, jobId, o.key);
    byId.set(id, [...(byId.get(id) ?? []), o]);
  }
  const snapshots: SnapshotEntry[] = [];
  for (const [snapshotId, objects] of byId) {
    const lastModified = new Date(Math.max(...objects.map((o) => o.lastModified.getTime())));
    const hasManifest = objects.some((o) => isManifestKey(o.key));
    const entry: SnapshotEntry = {
      jobId,
      snapshotId,
      state: hasManifest ? 'committed' : 'incomplete',
      bytes: objects.reduce((s, o) => s + o.bytes, 0),
      lastModified,
      objects,
    };
    if (hasManifest) {
      try {
        entry.manifest = await store.readManifest(snapshotId);
        entry.bytes = entry.manifest.images.reduce((s, f) => s + f.bytes, 0) + entry.manifest.files.bytes;
      } catch (error) {
        entry.unreadable = error instanceof Error ? error.message : String(error);
      }
    }
    snapshots.push(entry);
  }
  snapshots.sort((a, b) => b.snapshotId.localeCompare(a.snapshotId));
  const referenced = new Set(snapshots.flatMap((s) => (s.manifest ? chunkRefs(s.manifest).map((c) => c.pack) : [])));
  const anyUnreadable = snapshots.some((s) => s.unreadable !== undefined);
  const orphanPacks = anyUnreadable ? [] : packs.filter((p) => !referenced.has(packIdOfKey(p.key)));
  const times = [...snapshotObjects, ...packs].map((o) => o.lastModified.getTime());
  return { jobId, snapshots, packs, orphanPacks, finished, lastModified: new Date(times.length > 0 ? Math.max(...times) : 0) };
}
