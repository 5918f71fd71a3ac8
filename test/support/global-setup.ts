// Once per test run: build the images (cached by Docker) and start one S3 server that every end-to-end file shares.
import { execa } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { ensureLocalStackImage, startLocalStack } from './localstack.ts';
import { startS3Emulator, type StartedS3Emulator } from './s3-emulator.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
  }
}

/** The S3 servers the end-to-end suite runs against, chosen by SPOTSNAP_TEST_S3 (moto unless it says otherwise). */
const S3_SERVERS: Record<string, { check: () => Promise<void>; start: () => Promise<StartedS3Emulator> }> = {
  // docker/build-images.sh builds the moto image.
  moto: { check: async () => undefined, start: startS3Emulator },
  localstack: { check: ensureLocalStackImage, start: startLocalStack },
};

let emulator: StartedS3Emulator | undefined;

export async function setup(project: TestProject): Promise<void> {
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
  const choice = process.env.SPOTSNAP_TEST_S3 || 'moto';
  const s3Server = S3_SERVERS[choice];
  if (!s3Server)
    throw new Error(`SPOTSNAP_TEST_S3 is ${JSON.stringify(choice)}: set it to one of ${Object.keys(S3_SERVERS).join(', ')}, or leave it unset for moto`);
  const docker = await execa('docker', ['info', '--format', '{{.ServerVersion}}'], { reject: false });
  if (docker.exitCode !== 0) {
    throw new Error(
      `the end-to-end tests need a running Docker engine ("docker info" failed: ${docker.stderr.trim()}); .ci/run shows how to start one. ` +
        '`npm run test:unit` runs the unit tests without one',
    );
  }
  // A missing LocalStack image fails here, before minutes of image builds.
  await s3Server.check();
  await execa(path.join(root, 'docker/build-images.sh'), { stdio: 'inherit' });
  await execa(path.join(root, 'test/images/build-foreign-images.sh'), { stdio: 'inherit' });
  emulator = await s3Server.start();
  project.provide('s3Endpoint', emulator.endpoint);
}

export async function teardown(): Promise<void> {
  await emulator?.container.stop();
}
