// Once per test run: build the images (cached by Docker) and start one S3 emulator that every test file shares.
import { execa } from 'execa';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startS3Emulator, type StartedS3Emulator } from './s3-emulator.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
  }
}

let emulator: StartedS3Emulator | undefined;

export async function setup(project: TestProject): Promise<void> {
  process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
  process.env.TESTCONTAINERS_HOST_OVERRIDE ??= '127.0.0.1';
  const docker = await execa('docker', ['info', '--format', '{{.ServerVersion}}'], { reject: false });
  if (docker.exitCode !== 0) {
    throw new Error(`the tests need a running Docker engine ("docker info" failed: ${docker.stderr.trim()}); .ci/run shows how to start one`);
  }
  await execa(path.join(root, 'docker/build-images.sh'), { stdio: 'inherit' });
  await execa(path.join(root, 'docker/build-foreign-images.sh'), { stdio: 'inherit' });
  emulator = await startS3Emulator();
  project.provide('s3Endpoint', emulator.endpoint);
}

export async function teardown(): Promise<void> {
  await emulator?.container.stop();
}
