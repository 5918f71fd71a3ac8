// A unit test without a stand-in fails at once, saying so: no default AWS client, no shared endpoint, no client without one.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { createS3Client } from '../../agent/store/snapshot-store.ts';
import { emulatorClient } from './s3-client.ts';
import { sharedS3Endpoint } from './stand-ins.ts';

describe("the unit tests' guard", () => {
  it('answers a client built from the default environment with a refusal that names the way out', async () => {
    const error = (await createS3Client()
      .send(new ListObjectsV2Command({ Bucket: 'bucket' }))
      .catch((e: unknown) => e)) as Error;
    expect(error.name).toBe('NoStandIn');
    expect(error.message).toMatch(/^a unit test sent GET \/bucket.* without a stand-in: .*useS3StandIn/);
  });

  it('refuses to build a test client with no local endpoint', () => {
    expect(() => emulatorClient('')).toThrow(/needs a local endpoint such as http:\/\/127\.0\.0\.1:4566, not ""/);
    expect(() => emulatorClient('https://s3.amazonaws.com')).toThrow(/not "https:\/\/s3\.amazonaws\.com"/);
  });

  it('has no shared S3 server to give an end-to-end helper', () => {
    expect(() => sharedS3Endpoint()).toThrow(/needs the S3 server that test\/support\/global-setup\.ts starts for `npm test`/);
  });
});
