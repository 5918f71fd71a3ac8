// Unit tests' setup file: an AWS client built without an explicit endpoint reaches a local refuser, never AWS.
//
// The SDK's standard environment (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3) points at a server on 127.0.0.1 that
// answers every request with a 400 "NoStandIn" error naming the request; static credentials and
// AWS_EC2_METADATA_DISABLED keep the credential chain off the instance metadata address.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll } from 'vitest';
import { TEST_AWS_ENV } from './test-aws-env.ts';

const refuser = http.createServer((req, res) => {
  req.resume();
  res.statusCode = 400;
  res.setHeader('content-type', 'application/xml');
  res.end(
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoStandIn</Code><Message>' +
      `a unit test sent ${req.method} ${req.url?.replace(/[<>&]/g, '')} to the SDK's default endpoint (AWS) without a stand-in: give its client an explicit endpoint, ` +
      'e.g. const s3 = await useS3StandIn(bucket) (test/support/unit-s3.ts), or run it as an end-to-end test' +
      '</Message></Error>',
  );
});
await new Promise<void>((resolve) => refuser.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(refuser.address() as AddressInfo).port}`;
for (const name of ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_S3']) process.env[name] = url;
for (const [name, value] of Object.entries(TEST_AWS_ENV)) process.env[name] = value;
process.env.AWS_EC2_METADATA_DISABLED = 'true';
afterAll(() => {
  refuser.closeAllConnections();
  return new Promise<void>((resolve) => refuser.close(() => resolve()));
});
