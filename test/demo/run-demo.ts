// `npm run demo`: a task is interrupted by a simulated spot notice, checkpointed to a local S3, and resumed in a new container.
import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ImdsSimulator } from '../../localstack/imds-simulator.ts';
import { jobEnv } from '../support/job-env.ts';
import { createBucket, startS3Emulator } from '../support/s3-emulator.ts';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { agentEvent, runToCompletion, runUntilCheckpoint } from '../support/task-container.ts';

process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const MIB = Number(process.env.DEMO_TASK_MIB ?? 384);
const STEPS = 60;
const STEP_SECONDS = 0.15;
const NOTICE_AFTER_MS = 5000;
const command = ['python3', '/opt/spotsnap/samples/memory-task.py', String(MIB), String(STEPS), String(STEP_SECONDS), 'progress.log'];

function say(text: string): void {
  process.stdout.write(`\n==> ${text}\n`);
}

const docker = await execa('docker', ['info', '--format', '{{.ServerVersion}}'], { reject: false });
if (docker.exitCode !== 0) {
  console.error('demo: no Docker engine answers ("docker info" failed). Start one (see .ci/run) and run again.');
  process.exit(1);
}

say('Building the images (Debian 13 base with CRIU, S3 emulator, spotsnap task image)');
await execa(path.join(root, 'docker/build-images.sh'), { stdio: 'inherit' });

say('Starting the stand-ins: S3 emulator and IMDS simulator, on 127.0.0.1');
const s3 = await startS3Emulator();
const imds = new ImdsSimulator({ requireTokens: true });
await imds.start();
const bucket = 'spotsnap-demo';
await createBucket(s3.endpoint, bucket);
console.log(`S3 ${s3.endpoint}, IMDS ${imds.url}`);

try {
  say(`Reference: the task (${MIB} MiB of state, ${STEPS} steps) without interruption, spotsnap off`);
  const reference = await runToCompletion(command, {});
  const referenceSeconds = STEPS * STEP_SECONDS;
  console.log(reference.stdout.split('\n').slice(-3).join('\n'));

  const jobId = `demo-${randomUUID().slice(0, 8)}`;
  const env = (attempt: number) => jobEnv({ s3Endpoint: s3.endpoint, imdsUrl: imds.url, bucket, jobId, attempt });

  say(`Attempt 1 on a "spot instance": the notice comes after ${NOTICE_AFTER_MS / 1000} s`);
  imds.scheduleNotice(NOTICE_AFTER_MS);
  const first = await runUntilCheckpoint(command, env(1));
  imds.clearNotice();
  const stepsDone = first.stdout.split('\n').filter((l) => l.startsWith('step ')).length;
  console.log(`checkpoint committed after step ${stepsDone}/${STEPS}; the instance is reclaimed (container killed)`);

  say('Attempt 2 in a brand-new container (no shared volume): restore from S3 and run to the end');
  const second = await runToCompletion(command, env(2));
  const restoredLine = agentEvent(second.stderr, LogEvent.restoreDone);
  const restored = restoredLine !== undefined;
  const identical = first.stdout + second.stdout === reference.stdout;

  const committed = agentEvent(first.stderr, LogEvent.checkpointCommitted);
  const bytes = Number(committed?.imageBytes) + Number(committed?.fileBytes);
  const uploaded = Number(committed?.uploadedBytes);
  const dumpMs = Number(committed?.dumpMs);
  const totalMs = Number(committed?.totalMs);
  const restoreMs = Number(restoredLine?.restoreMs);

  say('Summary');
  const rows: Array<[string, string]> = [
    ['task restored (not restarted)', restored ? 'yes' : 'NO'],
    [
      'work preserved',
      `${stepsDone}/${STEPS} steps (${((stepsDone / STEPS) * 100).toFixed(0)}%, about ${(stepsDone * STEP_SECONDS).toFixed(1)} s of ${referenceSeconds.toFixed(1)} s not redone)`,
    ],
    ['checkpoint, notice to commit', `${(totalMs / 1000).toFixed(2)} s (CRIU dump ${(dumpMs / 1000).toFixed(2)} s)`],
    ['restore, start to running', `${(restoreMs / 1000).toFixed(2)} s`],
    ['snapshot size', `${(bytes / 1048576).toFixed(1)} MiB (${(uploaded / 1048576).toFixed(1)} MiB sent)`],
    ['attempt 2 exit code', String(second.exitCode)],
    ['output equals an uninterrupted run', identical ? 'yes (byte for byte, checksums included)' : 'NO'],
  ];
  for (const [name, value] of rows) console.log(`${name.padEnd(36)} ${value}`);
  process.exitCode = restored && identical && second.exitCode === 0 ? 0 : 1;
} finally {
  await imds.stop();
  await s3.container.stop();
}
