// SPOTSNAP_TEST_S3=localstack: real LocalStack (its S3 alone) on 127.0.0.1 for the run, in place of the moto emulator.
import { execa } from 'execa';
import { GenericContainer, Wait } from 'testcontainers';
import { freePort } from './free-port.ts';
import type { StartedS3Emulator } from './s3-emulator.ts';

export const LOCALSTACK_IMAGE = 'localstack/localstack:4';

/** Uses the image if this machine has it, else pulls it; says what to do when neither works. */
export async function ensureLocalStackImage(): Promise<void> {
  if ((await execa('docker', ['image', 'inspect', LOCALSTACK_IMAGE], { reject: false })).exitCode === 0) return;
  const pull = await execa('docker', ['pull', LOCALSTACK_IMAGE], { reject: false, all: true });
  if (pull.exitCode === 0) return;
  throw new Error(
    `SPOTSNAP_TEST_S3=localstack runs the end-to-end tests against ${LOCALSTACK_IMAGE}, which this machine does not have ` +
      `and could not pull ("docker pull ${LOCALSTACK_IMAGE}": ${String(pull.all).trim().split('\n').pop()}). ` +
      'Pull it where a registry is reachable (or `docker load` it), or leave SPOTSNAP_TEST_S3 unset to use the moto emulator image that docker/build-images.sh builds',
  );
}

/** Starts LocalStack with host networking on a free port of 127.0.0.1 (its gateway, path-style S3) and waits for it. */
export async function startLocalStack(): Promise<StartedS3Emulator> {
  await ensureLocalStackImage();
  const port = await freePort();
  const container = await new GenericContainer(LOCALSTACK_IMAGE)
    .withNetworkMode('host')
    .withEnvironment({ SERVICES: 's3', EAGER_SERVICE_LOADING: '1', GATEWAY_LISTEN: `127.0.0.1:${port}`, LOCALSTACK_HOST: `127.0.0.1:${port}` })
    .withWaitStrategy(Wait.forLogMessage(/^Ready\.$/m))
    .withStartupTimeout(120_000)
    .start();
  return { endpoint: `http://127.0.0.1:${port}`, container };
}
