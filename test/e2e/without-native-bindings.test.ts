// End to end: an image whose native hash bindings are gone still checkpoints and resumes (chunks named by SHA-256), and never restores chunks it cannot check.
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import { agentEvent, agentEvents, FRESH_START_EVENTS, runToCompletion, runUntilCheckpointOnceStarted, TASK_IMAGE } from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { s3Endpoint, bucket, imds, s3 } = useStandIns({ bucket: 'e2e-no-native' });

/** The task image without /opt/spotsnap/lib/native: as on an architecture the bindings were not built for. */
const NO_NATIVE_IMAGE = 'spotsnap-no-native:dev';

const command = ['python3', '/opt/spotsnap/samples/memory-task.py', '48', '40', '0.1'];
const finished = /^final [0-9a-f]{64}$/m;

beforeAll(async () => {
  await execa('docker', ['build', '-q', '-t', NO_NATIVE_IMAGE, '-'], { input: `FROM ${TASK_IMAGE}\nRUN rm -r /opt/spotsnap/lib/native\n` });
}, 120_000);

/** Every chunk digest of the job's one committed manifest. */
async function chunkDigests(jobId: string): Promise<string[]> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `snapshots/${jobId}/` }));
  const key = (listed.Contents ?? []).map((o) => o.Key!).find((k) => k.endsWith('/manifest.json'));
  expect(key).toBeDefined();
  const body = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
  const manifest = JSON.parse(body) as { images: Array<{ chunks: Array<{ digest: string }> }>; files: { chunks: Array<{ digest: string }> } };
  return [...manifest.images.flatMap((i) => i.chunks), ...manifest.files.chunks].map((c) => c.digest);
}

async function interrupt(jobId: string, image: string) {
  const env = jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt: 1 });
  const first = await runUntilCheckpointOnceStarted(command, env, /^task started/m, () => imds.scheduleNotice(0), image);
  imds.clearNotice();
  expect(first.stdout).not.toMatch(finished);
  return first;
}

describe('an image without the native hash bindings', () => {
  it('names chunks by SHA-256, and resumes from them where the bindings are missing too', async () => {
    const uninterrupted = await runToCompletion(command, {});
    const jobId = `no-native-${randomUUID()}`;
    const first = await interrupt(jobId, NO_NATIVE_IMAGE);
    const digests = await chunkDigests(jobId);
    expect(digests.length).toBeGreaterThan(10);
    expect(digests.every((d) => /^sha256:[0-9a-f]{64}$/.test(d))).toBe(true);

    const second = await runToCompletion(command, jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt: 2 }), 120_000, undefined, NO_NATIVE_IMAGE);
    const events = agentEvents(second.stderr);
    expect(events).toContain(LogEvent.restoreDone);
    for (const fresh of FRESH_START_EVENTS) expect(events).not.toContain(fresh);
    expect(second.exitCode).toBe(0);
    expect(first.stdout + second.stdout).toBe(uninterrupted.stdout);
  }, 300_000);

  it('refuses a snapshot whose chunks are named by BLAKE3, says why, and runs the task from the start', async () => {
    const uninterrupted = await runToCompletion(command, {});
    const jobId = `blake3-to-no-native-${randomUUID()}`;
    await interrupt(jobId, TASK_IMAGE);
    expect((await chunkDigests(jobId)).every((d) => /^blake3:[0-9a-f]{64}$/.test(d))).toBe(true);

    const second = await runToCompletion(command, jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt: 2 }), 120_000, undefined, NO_NATIVE_IMAGE);
    expect(agentEvents(second.stderr)).not.toContain(LogEvent.restoreDone);
    const fellBack = agentEvent(second.stderr, LogEvent.restoreFellBack);
    expect(fellBack?.reasons).toEqual([
      expect.stringMatching(
        /its chunks are named by blake3, which this agent cannot check: \/opt\/spotsnap\/lib\/native\/blake\.[a-z0-9-]+\.node is not in the bundle/,
      ),
    ]);
    // From the start, exactly as without spotsnap.
    expect(second.exitCode).toBe(0);
    expect(second.stdout).toBe(uninterrupted.stdout);
  }, 300_000);
});
