// End to end under faults: S3 errors and resets, a killed agent, tampered snapshots, a full disk, SIGTERM mid-checkpoint.
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ChunkRef, chunkRefs } from '../../agent/store/manifest.ts';
import { parseManifest } from '../../agent/store/manifest-parser.ts';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import {
  agentEvent,
  agentEvents,
  collect,
  eventLine,
  memoryTaskSteps,
  runToCompletion,
  runToCompletionWithTmpfs,
  runUntilCheckpoint,
  runUntilCheckpointOnceStarted,
  signalAndCollect,
  runPrepared,
  startAttempt,
  waitForExit,
  waitForLog,
  type AttemptOutput,
} from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { bucket, imds, proxy, s3 } = useStandIns({ bucket: 'e2e-faults', proxy: true });

const memoryTask = ['python3', '/opt/spotsnap/samples/memory-task.py', '64', '60', '0.1'];
let uninterrupted: string;

beforeAll(async () => {
  uninterrupted = (await runToCompletion(memoryTask, {})).stdout;
});
afterEach(() => {
  proxy.clearFaults();
  imds.clearNotice();
});

function envFor(jobId: string, attempt: number, overrides: Record<string, string> = {}): Record<string, string> {
  return { ...jobEnv({ s3Endpoint: proxy.url, imdsUrl: imds.url, bucket, jobId, attempt }), ...overrides };
}

async function keysOf(jobId: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `snapshots/${jobId}/` }));
  return (listed.Contents ?? []).map((o) => o.Key!);
}

describe('S3 faults during the upload', () => {
  it('retries 500s, 503 SlowDown and connections cut mid-pack, up and down, and restores the snapshot', async () => {
    const jobId = `faults-${randomUUID()}`;
    // Four faults in all: even if every one lands on the same pack's tries (S3_MAX_ATTEMPTS is 5), its fifth try succeeds.
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/packs/' }, action: { kind: 'status', status: 500, code: 'InternalError' }, times: 1 });
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/packs/' }, action: { kind: 'status', status: 503, code: 'SlowDown' }, times: 2 });
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/packs/' }, action: { kind: 'reset', afterBytes: 1024 * 1024 }, times: 1 });
    const first = await runUntilCheckpointOnceStarted(memoryTask, envFor(jobId, 1), memoryTaskSteps(5), () => imds.scheduleNotice(0));
    imds.clearNotice();
    const outcomes = proxy.requests.filter((r) => r.path.includes(`${jobId}/packs/`)).map((r) => r.outcome);
    expect(outcomes.filter((o) => o === 500)).toHaveLength(1);
    expect(outcomes.filter((o) => o === 503)).toHaveLength(2);
    expect(outcomes.filter((o) => o === 'reset')).toHaveLength(1);

    // The restore reads packs straight from the socket (agent/transfer/direct-range-get.ts): the same faults on its GETs.
    proxy.addFault({ match: { method: 'GET', pathIncludes: '/packs/' }, action: { kind: 'status', status: 500, code: 'InternalError' }, times: 1 });
    proxy.addFault({ match: { method: 'GET', pathIncludes: '/packs/' }, action: { kind: 'status', status: 503, code: 'SlowDown' }, times: 1 });
    proxy.addFault({ match: { method: 'GET', pathIncludes: '/packs/' }, action: { kind: 'cut-response', afterBytes: 3 << 20 }, times: 2 });
    const second = await runToCompletion(memoryTask, envFor(jobId, 2));
    const gets = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes(`${jobId}/packs/`)).map((r) => r.outcome);
    expect(gets.filter((o) => o === 500)).toHaveLength(1);
    expect(gets.filter((o) => o === 503)).toHaveLength(1);
    expect(gets.filter((o) => o === 'cut-response')).toHaveLength(2);
    expect(agentEvents(second.stderr)).toContain(LogEvent.restoreDone);
    expect(first.stdout + second.stdout).toBe(uninterrupted);
  });

  it('leaves no manifest when the upload keeps failing, and the task runs on to its normal end', async () => {
    const jobId = `faults-${randomUUID()}`;
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/packs/' }, action: { kind: 'status', status: 500, code: 'InternalError' }, times: Infinity });
    imds.scheduleNotice(2000);
    const result = await runToCompletion(memoryTask, envFor(jobId, 1));
    expect(agentEvents(result.stderr), result.stderr).toEqual(expect.arrayContaining([LogEvent.checkpointFailed, LogEvent.taskContinued]));
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(uninterrupted);
    expect((await keysOf(jobId)).filter((k) => k.endsWith('manifest.json'))).toEqual([]);
  });
});

describe('torn and tampered snapshots', () => {
  it('never restores a snapshot whose upload was cut by killing the agent; the one before is used', async () => {
    const jobId = `torn-${randomUUID()}`;
    imds.scheduleNotice(2000);
    const first = await runUntilCheckpoint(memoryTask, envFor(jobId, 1));
    // Attempt 2 is restored, gets a notice, and is killed (SIGKILL) while its parts are still going up.
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/packs/' }, action: { kind: 'delay', ms: 2000 }, times: Infinity });
    imds.scheduleNotice(1500);
    const second = await runUntilCheckpoint(memoryTask, envFor(jobId, 2), eventLine(LogEvent.checkpointDumped));
    imds.clearNotice();
    proxy.clearFaults();
    expect(agentEvents(second.stderr)).not.toContain(LogEvent.checkpointCommitted);

    const third = await runToCompletion(memoryTask, envFor(jobId, 3));
    const restored = agentEvent(third.stderr, LogEvent.restoreDone);
    expect(restored?.fromAttempt).toBe(1);
    expect(first.stdout + third.stdout).toBe(uninterrupted);
  });

  it.each<[string, (c: ChunkRef) => boolean, RegExp]>([
    ['stored raw', (c) => c.encoding === undefined, /blake3:[0-9a-f]{64} \(\d+ bytes\) does not match the manifest's blake3:[0-9a-f]{64}/],
    [
      'compressed',
      (c) => c.encoding === 'zstd',
      /zstd frame of \d+ bytes cannot be decompressed|blake3:[0-9a-f]{64} \(\d+ bytes\) does not match the manifest's blake3:[0-9a-f]{64}/,
    ],
  ])('refuses a snapshot whose image chunk %s changed after the commit, and falls back to the one before', async (_kind, ofKind, refusedAs) => {
    const jobId = `tamper-${randomUUID()}`;
    // Each notice once the attempt ran 10 steps (each rewrites 1 MiB), so that the second snapshot has chunks of its own.
    const first = await runUntilCheckpointOnceStarted(memoryTask, envFor(jobId, 1), memoryTaskSteps(10), () => imds.scheduleNotice(0));
    imds.clearNotice();
    await runUntilCheckpointOnceStarted(memoryTask, envFor(jobId, 2), memoryTaskSteps(10), () => imds.scheduleNotice(0));
    imds.clearNotice();
    // Alter one byte of a chunk in a pack that only the newest snapshot uses (packs the two share would spoil both).
    const manifests = await Promise.all(
      (await keysOf(jobId))
        .filter((k) => k.endsWith('manifest.json'))
        .sort()
        .map(async (Key) => parseManifest(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body!.transformToString())),
    );
    expect(manifests.map((m) => m.attempt)).toEqual([1, 2]);
    const olderPacks = new Set(chunkRefs(manifests[0]!).map((c) => c.pack));
    // A chunk of the memory pages, past the first: CRIU is reading the stream when it comes to it.
    const onlyNewest = manifests[1]!.images
      .filter((f) => f.name.startsWith('pages-'))
      .flatMap((f) => f.chunks.slice(1))
      .find((c) => !olderPacks.has(c.pack) && ofKind(c))!;
    expect(onlyNewest).toBeDefined();
    const packKey = `snapshots/${jobId}/packs/${onlyNewest.pack}`;
    const pack = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: packKey }))).Body!.transformToByteArray());
    pack[onlyNewest.offset + 7]! ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: packKey, Body: pack }));

    const third = await runToCompletion(memoryTask, envFor(jobId, 3));
    const refusal = agentEvent(third.stderr, LogEvent.restoreSnapshotFailed);
    expect(String(refusal?.err)).toMatch(refusedAs);
    // Refused mid-stream: the chunk was never written to CRIU's pipe, so CRIU failed (on a short image) before the tree ran.
    expect(String(refusal?.err)).toMatch(/^[^:]+: image pages-\d+\.img could not be streamed to criu: .*; so criu restore failed \(exit \d+\)\n/);
    expect(String(refusal?.err)).toMatch(/Reached EOF unexpectedly while reading page from image/);
    expect(agentEvent(third.stderr, LogEvent.restoreDone)?.fromAttempt).toBe(1);
    expect(first.stdout + third.stdout).toBe(uninterrupted);
  });
});

describe('no usable snapshot', () => {
  it('exits with 176 under SPOTSNAP_ON_RESTORE_FAILURE=fail, and starts from scratch by default', async () => {
    const jobId = `unusable-${randomUUID()}`;
    await runUntilCheckpointOnceStarted(memoryTask, envFor(jobId, 1), memoryTaskSteps(5), () => imds.scheduleNotice(0));
    imds.clearNotice();
    // Spoil the pack of a chunk of the only snapshot.
    const manifestKey = (await keysOf(jobId)).find((k) => k.endsWith('manifest.json'))!;
    const manifest = parseManifest(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }))).Body!.transformToString());
    const chunk = manifest.images.find((f) => f.name.startsWith('pages-'))!.chunks[0]!;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `snapshots/${jobId}/packs/${chunk.pack}`, Body: 'spoiled' }));

    const failing = await runToCompletion(memoryTask, envFor(jobId, 2, { SPOTSNAP_ON_RESTORE_FAILURE: 'fail' }));
    expect(failing.exitCode).toBe(176);
    expect(failing.stdout).toBe('');
    expect(agentEvents(failing.stderr)).toContain(LogEvent.restoreFailed);

    const fresh = await runToCompletion(memoryTask, envFor(jobId, 3));
    expect(agentEvents(fresh.stderr)).toContain(LogEvent.restoreFellBack);
    expect(fresh.exitCode).toBe(0);
    expect(fresh.stdout).toBe(uninterrupted);
  });
});

describe('local faults', () => {
  it('checkpoints and restores a 64 MiB task with a 4 MiB work dir: its pages never touch the disk', async () => {
    const jobId = `small-disk-${randomUUID()}`;
    // Once the task holds its memory (its steps have begun), so that the images are its 64 MiB.
    const first = await runUntilCheckpointOnceStarted(memoryTask, envFor(jobId, 1), memoryTaskSteps(5), () => imds.scheduleNotice(0), undefined, undefined, {
      '/var/lib/spotsnap': 'rw,size=4m',
    });
    imds.clearNotice();
    const committed = agentEvent(first.stderr, LogEvent.checkpointCommitted);
    expect(Number(committed?.imageBytes)).toBeGreaterThan(64 << 20);
    expect(Number(committed?.workDirPeakBytes)).toBeLessThan(4 << 20);
    // The restore too, in the same 4 MiB: the pages stream from S3 into CRIU, none written there.
    const second = await runToCompletionWithTmpfs(memoryTask, envFor(jobId, 2), { '/var/lib/spotsnap': 'rw,size=4m' });
    expect(agentEvent(second.stderr, LogEvent.restoreDone)?.fromAttempt).toBe(1);
    expect(Number(agentEvent(second.stderr, LogEvent.restoreStarted)?.streamedBytes)).toBeGreaterThan(64 << 20);
    expect(first.stdout + second.stdout).toBe(uninterrupted);
  });

  // Stand-ins for the bundle's image relay (/opt/spotsnap/bin/spotsnap-image-relay), each failing in its own way.
  const brokenRelays = [
    {
      name: 'does not start',
      script: '#!/bin/sh\necho "cannot bind: Address already in use" >&2\nexit 3\n',
      says: /^the image relay ended with exit 3: cannot bind: Address already in use$/,
    },
    {
      // The bundle's relay itself, with every pipe it hands over renamed to a descriptor that is not there: CRIU
      // then reads empty images and fails, on the relay's account, not the snapshot's.
      name: 'hands over pipes the agent cannot open',
      script: [
        '#!/bin/sh',
        'for loader in /opt/spotsnap/runtime/lib/ld-linux*; do :; done',
        '"$loader" --library-path /opt/spotsnap/runtime/lib /opt/spotsnap/runtime/bin/spotsnap-image-relay "$@" | while IFS= read -r line; do',
        '  case "$line" in "pipe "*) echo "pipe 999" ;; *) echo "$line" ;; esac',
        'done',
        '',
      ].join('\n'),
      says: /^could not open the pipe of image [\w.-]+\.img: ENOENT.*; so criu restore failed \(exit \d+\)/,
    },
  ];

  it.each(brokenRelays)('restores the same snapshot from downloaded images when the image relay $name, and says so', async ({ script, says }) => {
    const jobId = `broken-relay-${randomUUID()}`;
    const first = await runUntilCheckpointOnceStarted(memoryTask, envFor(jobId, 1), memoryTaskSteps(5), () => imds.scheduleNotice(0));
    imds.clearNotice();
    expect(agentEvents(first.stderr)).toContain(LogEvent.checkpointCommitted);
    const second = await runPrepared(memoryTask, envFor(jobId, 2), {
      files: [{ content: script, target: '/opt/spotsnap/bin/spotsnap-image-relay', mode: 0o755 }],
    });
    const fellBack = agentEvent(second.stderr, LogEvent.restoreStreamFellBack);
    expect(String(fellBack?.err)).toMatch(says);
    // Not held against the snapshot: no other was tried, and the task went on from the first attempt's checkpoint.
    expect(agentEvents(second.stderr)).not.toContain(LogEvent.restoreSnapshotFailed);
    expect(agentEvent(second.stderr, LogEvent.restoreDone)?.fromAttempt).toBe(1);
    expect(second.exitCode).toBe(0);
    expect(first.stdout + second.stdout).toBe(uninterrupted);
  });

  it('lets the task run on when the image disk fills up during the dump', async () => {
    const jobId = `disk-${randomUUID()}`;
    imds.scheduleNotice(2000);
    // 64 KiB: less than CRIU's images other than pages take for this task.
    const result = await runToCompletionWithTmpfs(memoryTask, envFor(jobId, 1), { '/var/lib/spotsnap': 'rw,size=64k' });
    const failure = agentEvent(result.stderr, LogEvent.checkpointFailed);
    expect(String(failure?.err)).toMatch(/criu dump of PID \d+ failed/);
    expect(agentEvents(result.stderr)).toContain(LogEvent.taskContinued);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(uninterrupted);
  });

  it('finishes a checkpoint in flight when SIGTERM arrives, then exits with 177 for the retry', async () => {
    const jobId = `sigterm-${randomUUID()}`;
    proxy.addFault({ match: { method: 'PUT', pathIncludes: '/packs/' }, action: { kind: 'delay', ms: 1000 }, times: 3 });
    imds.scheduleNotice(2000);
    const container = await startAttempt(memoryTask, envFor(jobId, 1));
    let first: AttemptOutput;
    try {
      await waitForLog(container, eventLine(LogEvent.checkpointDumped));
      first = await signalAndCollect(container, 'TERM');
    } finally {
      await container.stop({ remove: true, timeout: 0 });
    }
    imds.clearNotice();
    expect(agentEvents(first.stderr)).toContain(LogEvent.checkpointCommitted);
    expect(first.exitCode).toBe(177);

    const second = await runToCompletion(memoryTask, envFor(jobId, 2));
    expect(first.stdout + second.stdout).toBe(uninterrupted);
  });
});

describe('the metadata service misbehaving', () => {
  it('rides out errors, bad JSON, timeouts and expired tokens, checkpoints once on a "stop" notice, and resumes in place when it is withdrawn', async () => {
    const jobId = `imds-${randomUUID()}`;
    imds.requireTokens = true;
    imds.addFault({ kind: 'status', status: 500, times: 3 });
    imds.addFault({ kind: 'body', body: '{"action": "terminate", "time": ', times: 2 });
    imds.addFault({ kind: 'delay', ms: 2500, times: 1 });
    imds.addFault({ kind: 'body', body: '<html>oops</html>', times: 1 });
    const rotateTokens = setInterval(() => imds.expireTokens(), 700);
    imds.scheduleNotice(3000, 'stop');
    const container = await startAttempt(memoryTask, envFor(jobId, 1));
    let result: AttemptOutput;
    try {
      await waitForLog(container, eventLine(LogEvent.checkpointCommitted));
      // The notice stays up for a while (polled on every interval), then is withdrawn.
      await new Promise((r) => setTimeout(r, 2000));
      imds.clearNotice();
      await waitForExit(container);
      result = await collect(container);
    } finally {
      clearInterval(rotateTokens);
      imds.requireTokens = false;
      await container.stop({ remove: true, timeout: 0 });
    }
    expect(agentEvents(result.stderr).filter((e) => e === LogEvent.checkpointCommitted)).toHaveLength(1);
    expect(agentEvents(result.stderr)).toContain(LogEvent.metadataPollFailed);
    expect(agentEvent(result.stderr, LogEvent.noticeReceived)?.action).toBe('stop');
    expect(agentEvents(result.stderr)).toContain(LogEvent.taskResumedInPlace);
    expect(imds.requests.filter((r) => r.endsWith(' 401')).length).toBeGreaterThan(0);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(uninterrupted);
  });
});
