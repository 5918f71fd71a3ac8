// The tests' S3 client: always pointed at a named local endpoint (a stand-in or emulator), never at AWS.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { TEST_AWS_ENV } from './test-aws-env.ts';

export { TEST_AWS_ENV };

/** An S3 client for a local endpoint, as the agent would build it from AWS_ENDPOINT_URL_S3; refuses none. */
export function emulatorClient(endpoint: string, options: { maxAttempts?: number } = {}): S3Client {
  if (!endpoint || !/^https?:\/\/127\.0\.0\.1(:\d+)?\/?$/.test(endpoint)) {
    throw new Error(
      `a test's S3 client needs a local endpoint such as http://127.0.0.1:4566, not ${JSON.stringify(endpoint)}: ` +
        'unit tests start one with useS3StandIn() (test/support/unit-s3.ts); end-to-end tests get the emulator of `npm test`',
    );
  }
  return new S3Client({
    endpoint,
    region: TEST_AWS_ENV.AWS_REGION,
    forcePathStyle: true,
    ...options,
    credentials: { accessKeyId: TEST_AWS_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: TEST_AWS_ENV.AWS_SECRET_ACCESS_KEY },
  });
}

export async function createBucket(endpoint: string, bucket: string): Promise<void> {
  await emulatorClient(endpoint).send(new CreateBucketCommand({ Bucket: bucket }));
}
