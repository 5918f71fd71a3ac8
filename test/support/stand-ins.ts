// The local stand-ins of one end-to-end test file: an IMDS simulator, an optional S3 fault proxy, its bucket.
import { afterAll, beforeAll, inject } from 'vitest';
import { ImdsSimulator, type ImdsSimulatorOptions } from '../../localstack/imds-simulator.ts';
import { S3FaultProxy } from '../../localstack/s3-fault-proxy.ts';
import { createBucket, emulatorClient } from './s3-client.ts';

/** The S3 server of the whole run (global-setup.ts); throws at once, saying so, where the run has none. */
export function sharedS3Endpoint(): string {
  const endpoint = inject('s3Endpoint');
  if (!endpoint) {
    throw new Error(
      'this test needs the S3 server that test/support/global-setup.ts starts for `npm test` (test/vitest.config.ts), and this run has none: ' +
        'run it with `npm test -- <file>`; `npm run test:unit` runs only unit tests, which start an S3 stand-in of their own (test/support/unit-s3.ts)',
    );
  }
  return endpoint;
}

/** Starts them before the file's tests and stops them after; the S3 server itself is shared by the run. */
export function useStandIns(options: { bucket: string; proxy?: boolean; imds?: ImdsSimulatorOptions }) {
  const s3Endpoint = sharedS3Endpoint();
  const imds = new ImdsSimulator(options.imds);
  const proxy = new S3FaultProxy(s3Endpoint);
  beforeAll(async () => {
    await imds.start();
    if (options.proxy) await proxy.start();
    await createBucket(s3Endpoint, options.bucket);
  });
  afterAll(async () => {
    if (options.proxy) await proxy.stop();
    await imds.stop();
  });
  return { s3Endpoint, bucket: options.bucket, imds, proxy, s3: emulatorClient(s3Endpoint) };
}
