// Starts the S3 emulator image (moto_server, host networking, 127.0.0.1 only) as a testcontainer.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { freePort } from './free-port.ts';

export const S3_EMULATOR_IMAGE = 'spotsnap-s3:dev';

/** The credentials and region every test uses with the emulator (it accepts any). */
export const TEST_AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'test',
  AWS_SECRET_ACCESS_KEY: 'test',
  AWS_REGION: 'us-east-1',
} as const;

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

/** An S3 client for the emulator, as the agent would build it from AWS_ENDPOINT_URL_S3. */
export function emulatorClient(endpoint: string): S3Client {
  return new S3Client({ endpoint, region: TEST_AWS_ENV.AWS_REGION, forcePathStyle: true, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
}

export async function createBucket(endpoint: string, bucket: string): Promise<void> {
  await emulatorClient(endpoint).send(new CreateBucketCommand({ Bucket: bucket }));
}
