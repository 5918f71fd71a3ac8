import type { S3Client } from '@aws-sdk/client-s3';
import type http from 'node:http';
import { crc32 } from 'node:zlib';
import { emulatorClient } from '../../test/support/s3-client.ts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRecordingServer, type RecordingServer, type SeenRequest } from '../../test/support/recording-server.ts';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { putObjectDirect } from './direct-object-put.ts';

/** What the server answers to the n-th request (from 0), once it has read its body. */
type Answer = (n: number, res: http.ServerResponse) => void;

let answer: Answer;
let server: RecordingServer;
let seen: SeenRequest[] = [];
let client: S3Client;

const ok: Answer = (_n, res) => {
  res.setHeader('etag', '"e"');
  res.end();
};

beforeAll(async () => {
  server = await startRecordingServer(() => (n, _req, res) => answer(n, res));
  seen = server.seen;
  client = emulatorClient(server.endpoint, { maxAttempts: 3 });
});
afterAll(async () => {
  client.destroy();
  await server.close();
});
beforeEach(() => {
  server.clear();
  answer = ok;
});

const parts = [seededBytes('put-a', 1 << 20), seededBytes('put-b', 3), Buffer.alloc(0), seededBytes('put-c', 700_001)];
const whole = Buffer.concat(parts);
const checksum = (): string => {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(whole));
  return crc.toString('base64');
};

describe('putObjectDirect', () => {
  it('sends the parts, in order, as one body with its length, an unsigned payload and the checksum given', async () => {
    await putObjectDirect(client, { Bucket: 'b', Key: 'packs/p1', ChecksumAlgorithm: 'CRC32', ChecksumCRC32: checksum() }, parts);
    expect(seen).toHaveLength(1);
    const [request] = seen;
    expect(request!.method).toBe('PUT');
    expect(request!.url.split('?')[0]).toBe('/b/packs/p1');
    expect(request!.body.equals(whole)).toBe(true);
    expect(request!.headers['content-length']).toBe(String(whole.length));
    expect(request!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(request!.headers['x-amz-checksum-crc32']).toBe(checksum());
    expect(request!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=test\//);
  });

  it('sends the same bytes again when the SDK retries a 503', async () => {
    answer = (n, res) => {
      if (n > 0) return ok(n, res);
      res.statusCode = 503;
      res.setHeader('content-type', 'application/xml');
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>slow down</Message></Error>');
    };
    await putObjectDirect(client, { Bucket: 'b', Key: 'packs/p2', ChecksumAlgorithm: 'CRC32', ChecksumCRC32: checksum() }, parts);
    expect(seen).toHaveLength(2);
    expect(seen.every((s) => s.body.equals(whole))).toBe(true);
  });

  it("rejects with S3's error when it refuses the body, without retrying a refusal", async () => {
    // One PUT of the kind first, so that the next is signed by the agent (direct-signing.ts), whatever ran before.
    await putObjectDirect(client, { Bucket: 'b', Key: 'packs/p3-first', ChecksumAlgorithm: 'CRC32', ChecksumCRC32: checksum() }, parts);
    server.clear();
    answer = (_n, res) => {
      res.statusCode = 400;
      res.setHeader('content-type', 'application/xml');
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>BadDigest</Code><Message>the CRC-32 does not match</Message></Error>');
    };
    await expect(putObjectDirect(client, { Bucket: 'b', Key: 'packs/p3', ChecksumAlgorithm: 'CRC32', ChecksumCRC32: 'AAAAAA==' }, parts)).rejects.toMatchObject(
      {
        name: 'BadDigest',
      },
    );
    // The short attempt (a 400 might be its own fault) and the SDK's own, which is not retried.
    expect(seen.map((s) => s.headers['amz-sdk-invocation-id'] !== undefined)).toEqual([false, true]);
  });

  it('refuses a checksum algorithm without its value, and sends nothing', async () => {
    await expect(putObjectDirect(client, { Bucket: 'b', Key: 'packs/p5', ChecksumAlgorithm: 'CRC32' }, parts)).rejects.toThrow(
      'putObjectDirect needs the value of ChecksumCRC32 for packs/p5',
    );
    expect(seen).toHaveLength(0);
  });

  it('drops the connection and rejects with the reason when its signal aborts', async () => {
    const abort = new AbortController();
    let closed: Promise<void> | undefined;
    // The server never answers: only the abort ends the request, and the connection must go with it.
    answer = (_n, res) => {
      closed = new Promise((resolve) => res.on('close', () => resolve()));
      abort.abort(new Error('the checkpoint failed elsewhere'));
    };
    await expect(putObjectDirect(client, { Bucket: 'b', Key: 'packs/p4' }, parts, abort.signal)).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toHaveLength(1);
    await closed;
  });
});
