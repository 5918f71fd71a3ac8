// A unit test file's S3: an in-process stand-in (localstack/s3-stand-in.ts) with its buckets, stopped after the file.
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll } from 'vitest';
import { S3StandIn } from '../../localstack/s3-stand-in.ts';
import { emulatorClient } from './s3-client.ts';

export interface UnitS3 {
  endpoint: string;
  client: S3Client;
  standIn: S3StandIn;
}

/** Starts a stand-in on 127.0.0.1 for this file (call it at the top level: `const s3 = await useS3StandIn('b')`). */
export async function useS3StandIn(...buckets: string[]): Promise<UnitS3> {
  const standIn = new S3StandIn();
  const endpoint = await standIn.start();
  afterAll(() => standIn.stop());
  for (const bucket of buckets) standIn.createBucket(bucket);
  return { endpoint, client: emulatorClient(endpoint), standIn };
}
