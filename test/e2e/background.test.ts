// End to end: periodic background checkpoints, and the final checkpoint that then has little left to send.
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../agent/store/manifest.ts';
import { parseManifest } from '../../agent/store/manifest-parser.ts';
import { LogEvent, type LogEventName } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import { agentEvent, agentLog, checkpointEventLine, runToCompletion, runUntilCheckpointOnceStarted } from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { s3Endpoint, bucket, imds, proxy, s3 } = useStandIns({ bucket: 'e2e-background', proxy: true });
const BACKGROUND_COMMITTED = checkpointEventLine('background', LogEvent.checkpointCommitted);
/** The events whose order tells how a notice during a background checkpoint was handled. */
const ORDER_EVENTS: readonly LogEventName[] = [LogEvent.checkpointCommitted, LogEvent.noticeDeferred, LogEvent.noticeReceived];

async function manifestsOf(jobId: string): Promise<Manifest[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `snapshots/${jobId}/snapshots/` }));
  const keys = (listed.Contents ?? [])
    .map((o) => o.Key!)
    .filter((k) => k.endsWith('manifest.json'))
    .sort();
  return Promise.all(keys.map(async (Key) => parseManifest(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body!.transformToString())));
}

describe('background checkpoints', () => {
  it('are taken while the task runs on, so that the final checkpoint sends only what changed since', async () => {
    // Long enough to run on past its first background checkpoint, however slowly the container started.
    const command = ['python3', '/opt/spotsnap/samples/memory-task.py', '192', '100', '0.2'];
    const uninterrupted = await runToCompletion(command, {});
    const jobId = `background-${randomUUID()}`;
    const env = (attempt: number) => ({ ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt }), SPOTSNAP_CHECKPOINT_INTERVAL: '5s' });
    // The notice once a background checkpoint is committed, not at a time guessed from the container's start.
    const first = await runUntilCheckpointOnceStarted(command, env(1), BACKGROUND_COMMITTED, () => imds.scheduleNotice(0));
    imds.clearNotice();

    const manifests = await manifestsOf(jobId);
    const final = manifests.find((m) => m.checkpointKind === 'final')!;
    expect(manifests.filter((m) => m.checkpointKind === 'background').length).toBeGreaterThanOrEqual(1);
    expect(final.transfer.uploadedBytes).toBeLessThan(final.transfer.totalBytes * 0.5);
    // No dirty memory tracking on this kernel: background checkpoints are full dumps, deduplicated by chunk.
    expect(agentEvent(first.stderr, LogEvent.checkpointDirtyTracking)?.memDirtyTrack).toBe(false);
    // The background checkpoint's windows waited raw in the work dir while the task was frozen; the chunks made
    // of them once it ran on are the ones the final checkpoint found already sent, and the restore used.
    const background = agentLog(first.stderr).find((l) => l.event === LogEvent.checkpointCommitted && l.checkpoint === 'background');
    const spill = background?.spill as { windows: number; windowBytes: number } | undefined;
    expect(spill?.windows).toBeGreaterThan(100);
    expect(spill?.windowBytes).toBeGreaterThan(100 << 20);

    const second = await runToCompletion(command, env(2));
    expect(agentEvent(second.stderr, LogEvent.restoreDone)?.snapshotId).toBe(final.snapshotId);
    expect(first.stdout + second.stdout).toBe(uninterrupted.stdout);
  });

  it('spill into at most half of a small work dir, and still commit a snapshot that restores', async () => {
    const command = ['python3', '/opt/spotsnap/samples/memory-task.py', '64', '80', '0.2'];
    const uninterrupted = await runToCompletion(command, {});
    const jobId = `background-full-disk-${randomUUID()}`;
    const env = (attempt: number) => ({ ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt }), SPOTSNAP_CHECKPOINT_INTERVAL: '5s' });
    // 4 MiB: room for CRIU's small images, not for the task's 64 MiB of windows.
    const first = await runUntilCheckpointOnceStarted(command, env(1), BACKGROUND_COMMITTED, () => imds.scheduleNotice(0), undefined, undefined, {
      '/var/lib/spotsnap': 'rw,size=4m',
    });
    imds.clearNotice();
    const background = agentLog(first.stderr).find((l) => l.event === LogEvent.checkpointCommitted && l.checkpoint === 'background');
    expect(background, 'a background checkpoint committed').toBeDefined();
    // Half the 4 MiB at most: the rest stays for CRIU's images and the files copied aside; the windows past it went straight on.
    const spill = background?.spill as { windows: number; windowBytes: number; windowsRefused?: string } | undefined;
    expect(spill?.windowBytes).toBeLessThanOrEqual(2 << 20);
    expect(spill?.windowsRefused).toBeUndefined();
    // On that tmpfs the windows' room was written ahead before the freeze, within the same half.
    const reserved = agentLog(first.stderr).find((l) => l.event === LogEvent.checkpointSpillReserved);
    expect(Number(reserved?.reservedBytes)).toBeGreaterThan(1 << 20);
    expect(Number(reserved?.reservedBytes)).toBeLessThanOrEqual(2 << 20);
    expect(reserved?.refused).toBeUndefined();

    const second = await runToCompletion(command, env(2));
    expect(agentEvent(second.stderr, LogEvent.restoreDone)?.fromAttempt).toBe(1);
    expect(first.stdout + second.stdout).toBe(uninterrupted.stdout);
  });

  it('finish before the final checkpoint when the notice comes during one, and never run two dumps at once', async () => {
    // Long enough to be still running at the notice: the task runs on while the slow background upload goes on.
    const command = ['python3', '/opt/spotsnap/samples/memory-task.py', '96', '200', '0.1'];
    const uninterrupted = await runToCompletion(command, {});
    const jobId = `overlap-${randomUUID()}`;
    // Slow pack uploads (a dozen packs, three at a time) keep the first background checkpoint going when the notice comes.
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/packs/' }, action: { kind: 'delay', ms: 1000 }, times: 40 });
    const env = (attempt: number) => ({
      ...jobEnv({ s3Endpoint: proxy.url, imdsUrl: imds.url, bucket, jobId, attempt }),
      SPOTSNAP_CHECKPOINT_INTERVAL: '5s',
    });
    // The notice once the first background checkpoint has started (its packs are slow), not at a guessed time.
    const first = await runUntilCheckpointOnceStarted(command, env(1), checkpointEventLine('background', LogEvent.checkpointStarted), () =>
      imds.scheduleNotice(0),
    );
    imds.clearNotice();
    proxy.clearFaults();

    const log = agentLog(first.stderr);
    const order = log.filter((l) => l.event !== undefined && ORDER_EVENTS.includes(l.event)).map((l) => `${l.checkpoint ?? ''} ${l.event}`);
    expect(order[0]).toBe(` ${LogEvent.noticeDeferred}`);
    expect(order.indexOf(`background ${LogEvent.checkpointCommitted}`)).toBeLessThan(order.indexOf(` ${LogEvent.noticeReceived}`));
    const dumps = log.filter((l) => l.event === LogEvent.checkpointStarted).map((l) => l.checkpoint);
    expect(dumps.slice(0, 2)).toEqual(['background', 'final']);

    const second = await runToCompletion(command, env(2));
    expect(first.stdout + second.stdout).toBe(uninterrupted.stdout);
  });
});
