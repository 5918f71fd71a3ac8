// The local stand-ins of one end-to-end test file: an IMDS simulator, an optional S3 fault proxy, its bucket.
import { afterAll, beforeAll, inject } from 'vitest';
import { ImdsSimulator, type ImdsSimulatorOptions } from '../../localstack/imds-simulator.ts';
import { S3FaultProxy } from '../../localstack/s3-fault-proxy.ts';
import { createBucket, emulatorClient } from './s3-emulator.ts';

/** Starts them before the file's tests and stops them after; the S3 emulator itself is shared by the run. */
export function useStandIns(options: { bucket: string; proxy?: boolean; imds?: ImdsSimulatorOptions }) {
  const s3Endpoint = inject('s3Endpoint');
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
