// Pack PUTs and ranged GETs after the first of their kind are signed here, validly (checked by an independent SigV4 signer), and their failures are judged by the SDK as its own first attempt's.
import { S3Client } from '@aws-sdk/client-s3';
import type http from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signedHeaders } from '../../test/bench/plain-sigv4.ts';
import { startRecordingServer, type RecordedAnswer, type RecordingServer, type SeenRequest } from '../../test/support/recording-server.ts';
import { TEST_AWS_ENV } from '../../test/support/test-aws-env.ts';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { getRangeDirect } from './direct-range-get.ts';
import { putObjectDirect } from './direct-object-put.ts';
import { encodedKeyPath, knowsRoute, learnRoute, requestKind } from './direct-signing.ts';

type Seen = SeenRequest;
type Answer = RecordedAnswer;

const object = seededBytes('direct-signing-object', 1 << 20);
let answer: Answer;
let server: RecordingServer;
let endpoint: string;
let seen: Seen[] = [];
const clients: S3Client[] = [];

const serve: Answer = (_n, req, res) => {
  if (req.method === 'PUT') {
    res.setHeader('etag', '"e"');
    res.end();
    return;
  }
  const [, from, to] = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range))!.map(Number) as [number, number, number];
  res.statusCode = 206;
  res.setHeader('content-range', `bytes ${from}-${to}/${object.length}`);
  res.end(object.subarray(from, to + 1));
};

function s3Error(res: http.ServerResponse, status: number, code: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/xml');
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code} here</Message></Error>`);
}

/** A client of its own (nothing learned yet), with a session token when asked. */
function freshClient(sessionToken?: string): S3Client {
  const client = new S3Client({
    endpoint,
    region: 'eu-west-3',
    forcePathStyle: true,
    maxAttempts: 3,
    credentials: {
      accessKeyId: TEST_AWS_ENV.AWS_ACCESS_KEY_ID,
      secretAccessKey: TEST_AWS_ENV.AWS_SECRET_ACCESS_KEY,
      ...(sessionToken ? { sessionToken } : {}),
    },
  });
  clients.push(client);
  return client;
}

/** The signature an independent SigV4 signer computes for what the server received, with the same headers signed. */
function independentAuthorization(request: Seen, sessionToken?: string): string {
  const signed = /SignedHeaders=([^,]+)/.exec(String(request.headers.authorization))![1]!.split(';');
  const [path, query = ''] = request.url.split('?');
  const headers: Record<string, string> = {};
  for (const name of signed)
    if (!['host', 'x-amz-date', 'x-amz-content-sha256', 'x-amz-security-token'].includes(name)) headers[name] = String(request.headers[name]);
  const amzDate = String(request.headers['x-amz-date']);
  const date = new Date(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  return signedHeaders(
    { method: request.method, host: String(request.headers.host), path: path!, query, headers },
    { accessKeyId: TEST_AWS_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: TEST_AWS_ENV.AWS_SECRET_ACCESS_KEY, ...(sessionToken ? { sessionToken } : {}) },
    'eu-west-3',
    date,
    String(request.headers['x-amz-content-sha256']),
  ).authorization!;
}

const collect = () => {
  let bytes: Buffer[] = [];
  return {
    sink: { restart: () => (bytes = []), write: (piece: Buffer) => void bytes.push(Buffer.from(piece)) },
    bytes: () => Buffer.concat(bytes),
  };
};

const PUT_INPUT = { Bucket: 'b', ChecksumAlgorithm: 'CRC32' as const, ChecksumCRC32: 'AAAAAA==' };
const viaSdk = (s: Seen) => s.headers['amz-sdk-invocation-id'] !== undefined;

beforeAll(async () => {
  server = await startRecordingServer(() => answer);
  endpoint = server.endpoint;
  seen = server.seen;
});
afterAll(async () => {
  for (const client of clients) client.destroy();
  await server.close();
});
beforeEach(() => {
  server.clear();
  answer = serve;
});

describe('requests signed from what the SDK resolved', () => {
  it('sends the first PUT through the SDK and the next ones signed here, validly, with the same headers', async () => {
    const client = freshClient();
    const parts = [seededBytes('p1', 3000), seededBytes('p2', 5)];
    await putObjectDirect(client, { ...PUT_INPUT, Key: 'job/packs/aa' }, parts);
    await putObjectDirect(client, { ...PUT_INPUT, Key: 'job/packs/bb', ChecksumCRC32: 'BBBBBB==' }, parts);
    expect(seen.map(viaSdk)).toEqual([true, false]);
    const [sdk, short] = seen as [Seen, Seen];
    expect(short.url).toBe(sdk.url.replace('/aa', '/bb'));
    expect(short.body.equals(Buffer.concat(parts))).toBe(true);
    expect(short.headers['x-amz-checksum-crc32']).toBe('BBBBBB==');
    expect(short.headers['content-length']).toBe('3005');
    const kept = (s: Seen) =>
      Object.keys(s.headers)
        .filter((h) => !['amz-sdk-invocation-id', 'amz-sdk-request', 'connection'].includes(h))
        .sort();
    expect(kept(short)).toEqual(kept(sdk));
    for (const name of ['x-amz-content-sha256', 'x-amz-sdk-checksum-algorithm', 'user-agent', 'x-amz-user-agent'])
      expect(short.headers[name]).toBe(sdk.headers[name]);
    expect(short.headers.authorization).toBe(independentAuthorization(short));
    expect(sdk.headers.authorization).toBe(independentAuthorization(sdk));
  });

  it('reads ranges the same way, and signs the session token when the credentials carry one', async () => {
    const client = freshClient('a-session-token');
    for (const [offset, bytes] of [
      [0, 100],
      [4096, 65536],
    ] as const) {
      const { sink, bytes: got } = collect();
      await getRangeDirect(client, 'b', 'job/packs/cc', offset, bytes, sink);
      expect(got().equals(object.subarray(offset, offset + bytes))).toBe(true);
    }
    expect(seen.map(viaSdk)).toEqual([true, false]);
    const short = seen[1]!;
    expect(short.headers.range).toBe('bytes=4096-69631');
    expect(short.headers['x-amz-security-token']).toBe('a-session-token');
    expect(short.headers.authorization).toBe(independentAuthorization(short, 'a-session-token'));
  });

  it('learns each kind apart: another bucket, or other encryption, goes through the SDK first', async () => {
    const client = freshClient();
    const parts = [seededBytes('p3', 10)];
    await putObjectDirect(client, { ...PUT_INPUT, Key: 'k1' }, parts);
    await putObjectDirect(client, { ...PUT_INPUT, Key: 'k2', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'key-1' }, parts);
    await putObjectDirect(client, { ...PUT_INPUT, Key: 'k3', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'key-1' }, parts);
    await putObjectDirect(client, { ...PUT_INPUT, Bucket: 'other', Key: 'k4' }, parts);
    expect(seen.map(viaSdk)).toEqual([true, true, false, true]);
    expect(seen[2]!.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    expect(seen[2]!.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('key-1');
    expect(seen[3]!.url.startsWith('/other/k4')).toBe(true);
  });

  it('encodes a key as the SDK does', async () => {
    const client = freshClient();
    const odd = "job/a b+c!'()*~é/ä%2F.x";
    const { sink } = collect();
    await getRangeDirect(client, 'b', odd, 0, 10, sink);
    await getRangeDirect(client, 'b', odd, 10, 10, sink);
    expect(seen.map(viaSdk)).toEqual([true, false]);
    expect(seen[1]!.url.split('?')[0]).toBe(seen[0]!.url.split('?')[0]);
    expect(seen[1]!.url.split('?')[0]).toBe(`/b/${encodedKeyPath(odd)}`);
    expect(seen[1]!.headers.authorization).toBe(independentAuthorization(seen[1]!));
  });

  it('hands a 5xx of the short attempt to the SDK, which retries it', async () => {
    const client = freshClient();
    const { sink, bytes } = collect();
    await getRangeDirect(client, 'b', 'k', 0, 10, sink);
    answer = (n, req, res) => (n === 1 ? s3Error(res, 503, 'SlowDown') : serve(n, req, res));
    await getRangeDirect(client, 'b', 'k', 100, 1000, sink);
    expect(bytes().equals(object.subarray(100, 1100))).toBe(true);
    expect(seen.map(viaSdk)).toEqual([true, false, true]);
  });

  it('sends a request S3 refused on the short path (403) again through the SDK, and keeps that kind on the SDK', async () => {
    const client = freshClient();
    const parts = [seededBytes('p4', 10)];
    await putObjectDirect(client, { ...PUT_INPUT, Key: 'k1' }, parts);
    // The short path's signature refused (as if it were wrong), the SDK's own attempt taken.
    answer = (n, req, res) => (n === 1 ? s3Error(res, 403, 'SignatureDoesNotMatch') : serve(n, req, res));
    await putObjectDirect(client, { ...PUT_INPUT, Key: 'k2' }, parts);
    await putObjectDirect(client, { ...PUT_INPUT, Key: 'k3' }, parts);
    expect(seen.map(viaSdk)).toEqual([true, false, true, true]);
    expect(seen[2]!.url).toBe(seen[1]!.url);
    expect(seen[2]!.body.equals(parts[0]!)).toBe(true);
  });

  it("throws S3's error for a refusal the SDK's own attempt gets too, and a 404 of the short path without sending it again", async () => {
    const client = freshClient();
    const parts = [seededBytes('p5', 10)];
    await putObjectDirect(client, { ...PUT_INPUT, Key: 'k' }, parts);
    answer = (_n, _req, res) => s3Error(res, 403, 'AccessDenied');
    await expect(putObjectDirect(client, { ...PUT_INPUT, Key: 'k2' }, parts)).rejects.toMatchObject({ name: 'AccessDenied' });
    const { sink } = collect();
    answer = serve;
    await getRangeDirect(client, 'b', 'k', 0, 10, sink);
    answer = (_n, _req, res) => s3Error(res, 404, 'NoSuchKey');
    await expect(getRangeDirect(client, 'b', 'gone', 0, 10, sink)).rejects.toMatchObject({ name: 'NoSuchKey' });
    // The PUT: short (403), the SDK's own (403, not retried); the GETs: the SDK's, then short (404, taken as the SDK's).
    expect(seen.map(viaSdk)).toEqual([true, false, true, true, false]);
  });

  it('hands a dropped connection of the short attempt to the SDK, which sends it again', async () => {
    const client = freshClient();
    const { sink, bytes } = collect();
    await getRangeDirect(client, 'b', 'k', 0, 10, sink);
    // The first drop is taken for the kept-alive connection's close, and tried once on a fresh one; the second fails the attempt.
    answer = (n, req, res) => (n === 1 || n === 2 ? res.socket!.destroy() : serve(n, req, res));
    await getRangeDirect(client, 'b', 'k', 0, 4096, sink);
    expect(bytes().equals(object.subarray(0, 4096))).toBe(true);
    expect(seen.map(viaSdk)).toEqual([true, false, false, true]);
  });

  it("stops at the sink's own refusal, sending nothing more", async () => {
    const client = freshClient();
    const { sink } = collect();
    await getRangeDirect(client, 'b', 'k', 0, 10, sink);
    const throwing = {
      restart: () => undefined,
      write: () => {
        throw new Error('the pipe closed');
      },
    };
    await expect(getRangeDirect(client, 'b', 'k', 0, 4096, throwing)).rejects.toThrow('the pipe closed');
    const rejecting = { restart: () => undefined, write: () => undefined, ready: () => Promise.reject(new Error('the workers stopped')) };
    // A whole megabyte: more than one read, so that the sink is asked whether it is ready.
    await expect(getRangeDirect(client, 'b', 'k', 0, object.length, rejecting)).rejects.toThrow('the workers stopped');
    expect(seen.map(viaSdk)).toEqual([true, false, false]);
  });

  it('learns nothing from a request whose path does not end with its key, or that is not signed with SigV4', () => {
    const client = freshClient();
    const base = { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 1, headers: {} as Record<string, string> };
    const scope = 'AWS4-HMAC-SHA256 Credential=k/20261206/eu-west-3/s3/aws4_request, SignedHeaders=host, Signature=00';
    learnRoute(client, requestKind('GET', 'x'), 'key', { ...base, path: '/x/other', headers: { authorization: scope } });
    learnRoute(client, requestKind('GET', 'y'), 'key', { ...base, path: '/y/key', headers: {} });
    // A directory bucket's request: signed for s3express, with a session token of its own that only the SDK renews.
    const express = scope.replace('/s3/', '/s3express/');
    learnRoute(client, requestKind('GET', 'e1'), 'key', { ...base, path: '/e1/key', headers: { authorization: express } });
    learnRoute(client, requestKind('GET', 'e2'), 'key', { ...base, path: '/e2/key', headers: { authorization: scope, 'x-amz-s3session-token': 't' } });
    learnRoute(client, requestKind('GET', 'z'), 'key', { ...base, path: '/z/key', headers: { authorization: scope } });
    expect(['x', 'y', 'e1', 'e2', 'z'].map((bucket) => knowsRoute(client, requestKind('GET', bucket)))).toEqual([false, false, false, false, true]);
  });
});
