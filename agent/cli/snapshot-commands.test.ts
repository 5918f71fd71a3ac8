import { PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { sampleManifest } from '../../test/support/sample-manifest.ts';
import { useS3StandIn } from '../../test/support/unit-s3.ts';
import { SnapshotStore } from '../store/snapshot-store.ts';
import { inspectCommand } from './inspect-command.ts';
import { lsCommand } from './ls-command.ts';
import { planPrune, pruneCommand } from './prune-command.ts';

const bucket = 'unit-commands';
const { client } = await useS3StandIn(bucket);
const prefix = `p-${randomUUID().slice(0, 8)}`;
const location = { bucket, prefix };
const s3 = `s3://${bucket}/${prefix}`;

async function run<O>(
  command: (options: O, env: NodeJS.ProcessEnv, c: typeof client, out: (line: string) => void) => Promise<number>,
  options: O,
): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  const code = await command(options, {}, client, (l) => lines.push(l));
  return { code, lines };
}

beforeAll(async () => {
  // A running job: one committed snapshot whose pack exists, an incomplete one, and an orphan pack.
  const running = new SnapshotStore(client, location, 'job-running');
  const manifest = sampleManifest({ jobId: 'job-running', snapshotId: 'a0001-20261121T090000000Z' });
  await running.commit(manifest);
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/job-running/packs/${'1'.repeat(32)}`, Body: 'x' }));
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/job-running/packs/${'9'.repeat(32)}`, Body: 'orphan' }));
  await running.putObject('a0002-20261121T091000000Z', 'criuLog', Buffer.from('a checkpoint that never committed'));
  // A finished job.
  const done = new SnapshotStore(client, location, 'job-done');
  await done.commit(sampleManifest({ jobId: 'job-done', snapshotId: 'a0001-20261121T080000000Z' }));
  await done.markFinished({ attempt: 1, exitCode: 0, finishedAt: '2026-11-21T08:10:00Z' });
});

describe('spotsnap ls / inspect / prune against the S3 emulator', () => {
  it('lists snapshots with their state', async () => {
    const { code, lines } = await run(lsCommand, { s3, json: true });
    expect(code).toBe(0);
    const rows = JSON.parse(lines.join('\n')) as Array<Record<string, unknown>>;
    expect(rows.map((r) => [r.job, r.snapshot, r.state])).toEqual([
      ['job-done', 'a0001-20261121T080000000Z', 'committed'],
      ['job-done', '-', 'finished'],
      ['job-running', 'a0002-20261121T091000000Z', 'incomplete'],
      ['job-running', 'a0001-20261121T090000000Z', 'committed'],
    ]);
    const table = await run(lsCommand, { s3, job: 'job-running', json: false });
    expect(table.lines[0]).toMatch(/^JOB\s+SNAPSHOT\s+ATTEMPT\s+KIND\s+TIME\s+SIZE\s+STATE$/);
    expect(table.lines).toHaveLength(3);
  });

  it('shows a manifest readably, or as JSON', async () => {
    const text = await run(inspectCommand, { jobId: 'job-running', s3, json: false });
    expect(text.lines.join('\n')).toMatch(/snapshot\s+a0001-20261121T090000000Z \(final\)/);
    expect(text.lines.join('\n')).toMatch(/memory images\s+310 B in 2 files, 3 chunks/);
    const json = await run(inspectCommand, { jobId: 'job-running', snapshotId: 'a0001-20261121T090000000Z', s3, json: true });
    expect(JSON.parse(json.lines.join('\n')).jobId).toBe('job-running');
    await expect(run(inspectCommand, { jobId: 'job-none', s3, json: false })).rejects.toThrow(/no committed snapshot for job "job-none"/);
  });

  it('plans to remove finished jobs and leftovers only, and keeps what is recent', async () => {
    const recent = await planPrune(client, location, 3_600_000, Date.now());
    expect(recent.keys).toEqual([]);
    const plan = await planPrune(client, location, 60_000, Date.now() + 3_600_000);
    expect(plan.finishedJobs).toEqual(['job-done']);
    expect(plan.leftovers.map((o) => o.key).sort()).toEqual([
      `${prefix}/job-running/packs/${'9'.repeat(32)}`,
      `${prefix}/job-running/snapshots/a0002-20261121T091000000Z/criu-dump.log`,
    ]);
    expect(plan.keys).not.toContain(`${prefix}/job-running/packs/${'1'.repeat(32)}`);
  });

  it('changes nothing with --dry-run', async () => {
    const { lines } = await run(pruneCommand, { s3, olderThan: '0m', dryRun: true });
    expect(lines.at(-1)).toMatch(/^would free .* in \d+ objects \(1 finished jobs, 2 leftovers\)$/);
    const after = await run(lsCommand, { s3, json: true });
    expect(JSON.parse(after.lines.join('\n'))).toHaveLength(4);
  });
});
