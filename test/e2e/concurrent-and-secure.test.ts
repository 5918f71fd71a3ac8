// End to end: many jobs checkpointing into one bucket at once, encryption requested on every write, no secret in logs or manifests.
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import {
  agentEvent,
  agentEvents,
  agentLog,
  memoryTaskSteps,
  runToCompletion,
  runUntilCheckpoint,
  runUntilCheckpointOnceStarted,
} from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { s3Endpoint, bucket, imds, proxy, s3 } = useStandIns({ bucket: 'e2e-shared', proxy: true });

describe('many jobs at once', () => {
  // Eight tasks of 15 s, run twice and checkpointed once, on two cores: more than the suite's 120 s may take.
  it('lets 8 tasks checkpoint into one bucket together, and each restores its own state', { timeout: 300_000 }, async () => {
    // Different sizes and lengths give each task a different state and output.
    // Long enough (15 s and more) to be running still when the last of the eight has started.
    const commands = Array.from({ length: 8 }, (_, i) => ['python3', '/opt/spotsnap/samples/memory-task.py', String(24 + 4 * i), String(150 + i), '0.1']);
    const jobIds = commands.map((_, i) => `shared-${i}-${randomUUID()}`);
    const env = (i: number, attempt: number) => jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId: jobIds[i]!, attempt });

    const uninterrupted = await Promise.all(commands.map((c) => runToCompletion(c, {})));
    // One notice for all, once every task has begun its steps, however long eight containers took to start.
    let running = 0;
    const noticeOnceAllRun = () => {
      running += 1;
      if (running === commands.length) imds.scheduleNotice(0);
    };
    const first = await Promise.all(commands.map((c, i) => runUntilCheckpointOnceStarted(c, env(i, 1), memoryTaskSteps(1), noticeOnceAllRun)));
    imds.clearNotice();
    const second = await Promise.all(commands.map((c, i) => runToCompletion(c, env(i, 2))));

    for (const i of commands.keys()) {
      const restored = agentEvent(second[i]!.stderr, LogEvent.restoreDone);
      expect(restored?.jobId).toBe(jobIds[i]);
      expect(second[i]!.exitCode).toBe(0);
      expect(first[i]!.stdout + second[i]!.stdout).toBe(uninterrupted[i]!.stdout);
    }
  });
});

describe('encryption and secrets', () => {
  const command = [
    'sh',
    '-c',
    'echo "file-secret-DEF" > secret.txt; i=0; while [ $i -lt 40 ]; do i=$((i+1)); echo $i >> count.txt; sleep 0.1; done; cat count.txt | wc -l',
  ];

  it('asks S3 for AES256 encryption and sends a checksum S3 verifies with every write', async () => {
    const jobId = `sse-${randomUUID()}`;
    proxy.requests.length = 0;
    imds.scheduleNotice(1500);
    await runUntilCheckpoint(command, { ...jobEnv({ s3Endpoint: proxy.url, imdsUrl: imds.url, bucket, jobId, attempt: 1 }), SPOTSNAP_SSE: 'AES256' });
    imds.clearNotice();
    const writes = proxy.requests.filter((r) => r.path.includes(jobId) && (r.method === 'PUT' || (r.method === 'POST' && r.query.includes('uploads'))));
    const creates = writes.filter((r) => r.method === 'POST' || !r.query.includes('partNumber'));
    expect(creates.length).toBeGreaterThanOrEqual(3); // packs, CRIU log, manifest
    for (const request of creates) expect(request.headers['x-amz-server-side-encryption']).toBe('AES256');
    const packs = writes.filter((r) => r.path.includes(`${jobId}/packs/`));
    expect(packs.length).toBeGreaterThanOrEqual(1);
    // Packs carry the CRC-32 the agent computed as it filled them; the small JSON objects a SHA-256.
    for (const request of packs) expect(request.headers['x-amz-checksum-crc32']).toMatch(/^[A-Za-z0-9+/]{6}==$/);
    for (const request of writes.filter((r) => r.method === 'PUT' && !packs.includes(r))) {
      expect(Object.keys(request.headers).some((h) => h === 'x-amz-checksum-sha256' || h === 'x-amz-sdk-checksum-algorithm' || h === 'x-amz-trailer')).toBe(
        true,
      );
    }
  });

  it('asks for aws:kms with the configured key', async () => {
    const jobId = `kms-${randomUUID()}`;
    proxy.requests.length = 0;
    imds.scheduleNotice(1500);
    await runToCompletion(command, {
      ...jobEnv({ s3Endpoint: proxy.url, imdsUrl: imds.url, bucket, jobId, attempt: 1 }),
      SPOTSNAP_SSE: 'aws:kms',
      SPOTSNAP_SSE_KMS_KEY_ID: 'alias/spotsnap-test',
      SPOTSNAP_AFTER_CHECKPOINT: 'exit',
    });
    imds.clearNotice();
    // Small objects go up in one PUT, large ones start with POST ?uploads: every such request asks for KMS.
    const creates = proxy.requests.filter(
      (r) => r.path.includes(jobId) && ((r.method === 'PUT' && !r.query.includes('partNumber')) || (r.method === 'POST' && r.query.includes('uploads'))),
    );
    expect(creates.length).toBeGreaterThan(0);
    for (const create of creates) {
      expect(create.headers['x-amz-server-side-encryption']).toBe('aws:kms');
      expect(create.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('alias/spotsnap-test');
    }
  });

  it('keeps credentials, environment values and file contents out of the logs and the manifest', async () => {
    const jobId = `secrets-${randomUUID()}`;
    const secrets = { AWS_SECRET_ACCESS_KEY: 'aws-secret-XYZ123', TASK_API_TOKEN: 'env-secret-ABC456' };
    const env = (attempt: number) => ({ ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt }), ...secrets });
    imds.scheduleNotice(1500);
    const first = await runUntilCheckpoint(command, env(1));
    imds.clearNotice();
    const second = await runToCompletion(command, env(2));
    expect(agentEvents(second.stderr)).toContain(LogEvent.restoreDone);

    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `snapshots/${jobId}/` }));
    const manifestKey = (listed.Contents ?? []).map((o) => o.Key!).find((k) => k.endsWith('manifest.json'))!;
    const manifest = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }))).Body!.transformToString();
    const agentLines = [...agentLog(first.stderr), ...agentLog(second.stderr)].map((l) => JSON.stringify(l)).join('\n');
    for (const text of [manifest, agentLines]) {
      expect(text).not.toContain('aws-secret-XYZ123');
      expect(text).not.toContain('env-secret-ABC456');
      expect(text).not.toContain('file-secret-DEF');
      expect(text).not.toContain('count.txt');
    }
  });
});
