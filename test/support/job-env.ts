// The environment of one spotsnap-enabled job in the tests: S3 emulator, IMDS simulator, credentials, fast polling.
import { TEST_AWS_ENV } from './test-aws-env.ts';

export function jobEnv(options: { s3Endpoint: string; imdsUrl: string; bucket: string; jobId: string; attempt: number }): Record<string, string> {
  return {
    ...TEST_AWS_ENV,
    SPOTSNAP_ENABLED: 'true',
    SPOTSNAP_S3_URI: `s3://${options.bucket}/snapshots`,
    AWS_BATCH_JOB_ID: options.jobId,
    AWS_BATCH_JOB_ATTEMPT: String(options.attempt),
    AWS_ENDPOINT_URL_S3: options.s3Endpoint,
    AWS_EC2_METADATA_SERVICE_ENDPOINT: options.imdsUrl,
    SPOTSNAP_POLL_INTERVAL_MS: '200',
  };
}
