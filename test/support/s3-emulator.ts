// Starts the S3 emulator image (moto_server, host networking, 127.0.0.1 only) as a testcontainer.
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { freePort } from './free-port.ts';

export { createBucket, emulatorClient, TEST_AWS_ENV } from './s3-client.ts';

export const S3_EMULATOR_IMAGE = 'spotsnap-s3:dev';

export interface StartedS3Emulator {
  endpoint: string;
  container: StartedTestContainer;
}

export async function startS3Emulator(): Promise<StartedS3Emulator> {
  const port = await freePort();
  const container = await new GenericContainer(S3_EMULATOR_IMAGE)
    .withNetworkMode('host')
    .withCommand(['-p', String(port)])
    .withWaitStrategy(Wait.forLogMessage(/Running on/))
    .withStartupTimeout(60_000)
    .start();
  return { endpoint: `http://127.0.0.1:${port}`, container };
}
