// `spotsnap prune` fails closed: a job with a committed manifest it cannot read keeps every object, and the exit code says so.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { emulatorClient } from '../../test/support/s3-client.ts';
import { sampleManifest } from '../../test/support/sample-manifest.ts';
import { useS3StandIn } from '../../test/support/unit-s3.ts';
import { MANIFEST_SCHEMA_VERSION } from '../store/manifest.ts';
import { snapshotObjectKey } from '../store/s3-layout.ts';
import { listAll } from '../store/s3-objects.ts';
import { SnapshotStore } from '../store/snapshot-store.ts';
import { planPrune, pruneCommand } from './prune-command.ts';

const bucket = 'unit-prune';
const { endpoint } = await useS3StandIn(bucket);
const prefix = `p-${randomUUID().slice(0, 8)}`;
const location = { bucket, prefix };
const s3 = `s3://${bucket}/${prefix}`;
const ORPHAN = '9'.repeat(32);
const REFERENCED = '1'.repeat(32);
const DENIED_JOB = 'job-denied';

/** The emulator's client, except that reads of DENIED_JOB's manifests are refused, as S3 refuses them without kms:Decrypt. */
function denyingClient() {
  const client = emulatorClient(endpoint);
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const key = (args.input as { Key?: string }).Key ?? '';
      if (context.commandName === 'GetObjectCommand' && key.startsWith(`${prefix}/${DENIED_JOB}/`) && key.endsWith('/manifest.json')) {
        throw Object.assign(new Error('User is not authorized to perform: kms:Decrypt'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
      }
      return next(args);
    },
    { step: 'initialize', name: 'denyManifestsOfOneJob' },
  );
  return client;
}
const client = denyingClient();

/** Every key stored under a job, sorted. */
async function keysOf(jobId: string): Promise<string[]> {
  return (await listAll(client, bucket, `${prefix}/${jobId}/`)).objects.map((o) => o.key).sort();
}

/** A job with a committed snapshot, a pack no readable manifest names, and a checkpoint that never committed. */
async function seedJob(jobId: string, manifest: object): Promise<void> {
  const id = 'a0001-20261121T090000000Z';
  await client.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: snapshotObjectKey(location, jobId, id, 'manifest'),
      Body: JSON.stringify(manifest),
      ContentType: 'application/json',
    }),
  );
  for (const pack of [REFERENCED, ORPHAN]) {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${jobId}/packs/${pack}`, Body: `pack ${pack}` }));
  }
  await new SnapshotStore(client, location, jobId).putObject('a0002-20261121T091000000Z', 'criuLog', Buffer.from('a checkpoint that never committed'));
}

const before = new Map<string, string[]>();
const UNREADABLE_JOBS = ['job-denied', 'job-finished-foreign', 'job-newer'];

beforeAll(async () => {
  const snapshotId = 'a0001-20261121T090000000Z';
  // Written by a newer spotsnap.
  await seedJob('job-newer', { ...sampleManifest({ jobId: 'job-newer', snapshotId }), schemaVersion: MANIFEST_SCHEMA_VERSION + 1 });
  // Its manifest cannot be read with these credentials.
  await seedJob(DENIED_JOB, sampleManifest({ jobId: DENIED_JOB, snapshotId }));
  // A finished job whose manifest names another job: even its finished marker stays.
  await seedJob('job-finished-foreign', sampleManifest({ jobId: 'someone-else', snapshotId }));
  await new SnapshotStore(client, location, 'job-finished-foreign').markFinished({ attempt: 1, exitCode: 0, finishedAt: '2026-11-21T08:10:00Z' });
  // A job prune may clean: its orphan pack and incomplete checkpoint go.
  await seedJob('job-ok', sampleManifest({ jobId: 'job-ok', snapshotId }));
  for (const jobId of [...UNREADABLE_JOBS, 'job-ok']) before.set(jobId, await keysOf(jobId));
});

describe('spotsnap prune with committed manifests it cannot read', () => {
  it('plans nothing for such jobs, names each with the reason, and still plans the others', async () => {
    const plan = await planPrune(client, location, 60_000, Date.now() + 3_600_000);
    expect(plan.skippedJobs.map((j) => j.jobId)).toEqual(UNREADABLE_JOBS);
    const reasons = Object.fromEntries(plan.skippedJobs.map((j) => [j.jobId, j.reasons.join('; ')]));
    expect(reasons['job-newer']).toMatch(/^a0001-20261121T090000000Z: .*written by a newer spotsnap/);
    expect(reasons[DENIED_JOB]).toMatch(/kms:Decrypt/);
    expect(reasons['job-finished-foreign']).toMatch(/names job "someone-else"/);
    for (const jobId of UNREADABLE_JOBS) expect(plan.keys.filter((k) => k.startsWith(`${prefix}/${jobId}/`))).toEqual([]);
    expect(plan.finishedJobs).toEqual([]);
    expect(plan.keys.filter((k) => k.startsWith(`${prefix}/job-ok/`)).sort()).toEqual([
      `${prefix}/job-ok/packs/${ORPHAN}`,
      `${prefix}/job-ok/snapshots/a0002-20261121T091000000Z/criu-dump.log`,
    ]);
  });

  it('deletes nothing of them, reports them and exits 1', async () => {
    const lines: string[] = [];
    const code = await pruneCommand({ s3, olderThan: '0m', dryRun: false }, {}, client, (l) => lines.push(l));
    expect(code).toBe(1);
    for (const jobId of UNREADABLE_JOBS) {
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`^skipping job ${jobId}: nothing of it is deleted, because a committed manifest could not be read`)),
      );
      expect(await keysOf(jobId)).toEqual(before.get(jobId));
    }
    expect(lines.at(-2)).toMatch(/^freed .* in 2 objects \(0 finished jobs, 2 leftovers, 3 jobs skipped\)$/);
    expect(lines.at(-1)).toMatch(/^3 jobs were left whole because a committed manifest of theirs could not be read: /);
    expect(await keysOf('job-ok')).toEqual(before.get('job-ok')!.filter((k) => !k.endsWith(ORPHAN) && !k.endsWith('criu-dump.log')));
    expect(await keysOf('job-ok')).toContain(`${prefix}/job-ok/packs/${REFERENCED}`);
  });
});
