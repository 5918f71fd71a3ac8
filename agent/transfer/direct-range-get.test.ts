import { S3Client } from '@aws-sdk/client-s3';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { emulatorClient } from '../../test/support/s3-client.ts';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signedQueryString } from './direct-http-send.ts';
import { getRangeDirect, RangeLengthError, type BodySink } from './direct-range-get.ts';

/** What the stand-in server does with the n-th request (from 0), given the object and the asked range. */
type Answer = (n: number, req: http.IncomingMessage, res: http.ServerResponse, data: Buffer) => void;

const object = seededBytes('range-get/object', 3 << 20);
let answer: Answer;
let requests: http.IncomingMessage[] = [];
let server: http.Server;
let client: S3Client;

function serveRange(req: http.IncomingMessage, res: http.ServerResponse, data: Buffer, options: { chunked?: boolean; cutAfter?: number } = {}): void {
  const [, from, to] = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')!.map(Number) as [number, number, number];
  const body = data.subarray(from, to + 1);
  res.statusCode = 206;
  res.setHeader('content-range', `bytes ${from}-${from + body.length - 1}/${data.length}`);
  if (!options.chunked) res.setHeader('content-length', body.length);
  if (options.cutAfter !== undefined) {
    res.write(body.subarray(0, options.cutAfter), () => res.socket?.destroy());
    return;
  }
  // Several writes, so the body crosses many socket reads (and chunk boundaries when chunked).
  for (let at = 0; at < body.length; at += 100_003) res.write(body.subarray(at, at + 100_003));
  res.end();
}

function s3Error(res: http.ServerResponse, status: number, code: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/xml');
  res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`);
}

/** A sink that copies what it is handed, as the restore's writers do, and counts restarts. */
function collectingSink(): BodySink & { bytes: () => Buffer; restarts: number } {
  let pieces: Buffer[] = [];
  const sink = {
    restarts: 0,
    restart: () => {
      sink.restarts++;
      pieces = [];
    },
    write: (piece: Buffer) => void pieces.push(Buffer.from(piece)),
    bytes: () => Buffer.concat(pieces),
  };
  return sink;
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const n = requests.length;
    requests.push(req);
    answer(n, req, res, object);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  client = emulatorClient(`http://127.0.0.1:${port}`, { maxAttempts: 3 });
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(() => {
  requests = [];
});

describe('getRangeDirect', () => {
  it('hands a signed ranged GET body to the sink, byte for byte, across many reads', async () => {
    answer = (_n, req, res, data) => serveRange(req, res, data);
    const sink = collectingSink();
    await getRangeDirect(client, 'bucket', 'job/packs/p1', 12345, 2 << 20, sink);
    expect(sink.bytes().equals(object.subarray(12345, 12345 + (2 << 20)))).toBe(true);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.url).toBe('/bucket/job/packs/p1?x-id=GetObject');
    expect(requests[0]!.headers.range).toBe(`bytes=12345-${12345 + (2 << 20) - 1}`);
    expect(requests[0]!.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=test\//);
  });

  it('reads the body straight into the memory the sink names, and copies only what came with the head', async () => {
    answer = (_n, req, res, data) => serveRange(req, res, data);
    const bytes = 2 << 20;
    const target = Buffer.alloc(bytes);
    let filled = 0;
    let inPlace = 0;
    const sink: BodySink = {
      restart: () => (filled = 0),
      into: (left) => target.subarray(filled, filled + Math.min(left, 100_000)),
      write: (piece) => {
        if (piece.buffer === target.buffer && piece.byteOffset === target.byteOffset + filled) inPlace += piece.length;
        else piece.copy(target, filled);
        filled += piece.length;
      },
    };
    await getRangeDirect(client, 'bucket', 'k', 777, bytes, sink);
    expect(target.equals(object.subarray(777, 777 + bytes))).toBe(true);
    // Only the first read, which holds the head, lands in the connection's own buffer (256 KiB at most).
    expect(inPlace).toBeGreaterThanOrEqual(bytes - (256 << 10));
  });

  it('decodes a chunked body', async () => {
    answer = (_n, req, res, data) => serveRange(req, res, data, { chunked: true });
    const sink = collectingSink();
    await getRangeDirect(client, 'bucket', 'k', 0, object.length, sink);
    expect(requests[0]!.headers.range).toBe(`bytes=0-${object.length - 1}`);
    expect(sink.bytes().equals(object)).toBe(true);
  });

  it('lets the SDK retry a 503 SlowDown and a connection cut mid-body, restarting the sink each time', async () => {
    answer = (n, req, res, data) => {
      if (n === 0) s3Error(res, 503, 'SlowDown');
      else if (n === 1) serveRange(req, res, data, { cutAfter: 300_000 });
      else serveRange(req, res, data);
    };
    const sink = collectingSink();
    await getRangeDirect(client, 'bucket', 'k', 4096, 1 << 20, sink);
    expect(requests).toHaveLength(3);
    expect(sink.restarts).toBe(2);
    expect(sink.bytes().equals(object.subarray(4096, 4096 + (1 << 20)))).toBe(true);
  });

  it('reads nothing more while the sink is not ready, and the whole body once it is', async () => {
    let served: http.ServerResponse | undefined;
    answer = (_n, req, res, data) => {
      served = res;
      serveRange(req, res, data);
    };
    const collected = collectingSink();
    let writes = 0;
    let release: (() => void) | undefined;
    let held = 0;
    const sink: BodySink = {
      restart: collected.restart,
      write: (piece) => {
        writes++;
        collected.write(piece);
      },
      // Not ready after the first read: nothing is written until the test lets it go on.
      ready: () => {
        if (held > 0) return undefined;
        held++;
        return new Promise<void>((resolve) => (release = resolve));
      },
    };
    const reading = getRangeDirect(client, 'bucket', 'k', 0, 2 << 20, sink);
    await expect.poll(() => release !== undefined, { timeout: 5000 }).toBe(true);
    const writesWhileHeld = writes;
    // Once the server has sent the whole body or is held back by the client's full socket, and the client's
    // loop has turned, the sink has still seen nothing more: the socket is paused.
    await expect.poll(() => served !== undefined && (served.writableFinished || (served.socket?.writableLength ?? 0) > 0), { timeout: 5000 }).toBe(true);
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toBe(writesWhileHeld);
    expect(collected.bytes().length).toBeLessThan(2 << 20);
    release!();
    await reading;
    expect(collected.bytes().equals(object.subarray(0, 2 << 20))).toBe(true);
  });

  it('stops with the error a sink that is not ready rejects with', async () => {
    answer = (_n, req, res, data) => serveRange(req, res, data);
    const sink: BodySink = { restart: () => undefined, write: () => undefined, ready: () => Promise.reject(new Error('the workers stopped')) };
    await expect(getRangeDirect(client, 'bucket', 'k', 0, 1 << 20, sink)).rejects.toThrow('the workers stopped');
    expect(requests).toHaveLength(1);
  });

  it('rejects with the S3 error a 404 carries, without retrying', async () => {
    answer = (_n, _req, res) => s3Error(res, 404, 'NoSuchKey');
    await expect(getRangeDirect(client, 'bucket', 'gone', 0, 10, collectingSink())).rejects.toMatchObject({ name: 'NoSuchKey' });
    expect(requests).toHaveLength(1);
  });

  it('stops with the error the sink throws, without retrying', async () => {
    answer = (_n, req, res, data) => serveRange(req, res, data);
    const sink: BodySink = {
      restart: () => undefined,
      write: () => {
        throw new Error('chunk 3 does not match its SHA-256');
      },
    };
    await expect(getRangeDirect(client, 'bucket', 'k', 0, 1 << 20, sink)).rejects.toThrow('chunk 3 does not match its SHA-256');
    expect(requests).toHaveLength(1);
  });

  it('refuses a body shorter or longer than the range asked for', async () => {
    answer = (_n, req, res, data) => serveRange(req, res, data.subarray(0, 1000));
    await expect(getRangeDirect(client, 'bucket', 'k', 0, 5000, collectingSink())).rejects.toThrow(/k bytes 0\+5000: a short read \(1000 bytes\)/);
    answer = (_n, _req, res, data) => {
      res.statusCode = 200;
      res.setHeader('content-length', data.length);
      res.end(data);
    };
    await expect(getRangeDirect(client, 'bucket', 'k', 0, 5000, collectingSink())).rejects.toThrow(RangeLengthError);
  });
});

describe('getRangeDirect on a raw socket', () => {
  it('reads a head that arrives across several reads, after an interim 100 answer', async () => {
    const pieces = [
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 206 Partial',
      ' Content\r\nContent-Length: 6\r\nContent-Range: bytes 2-7/10\r',
      '\n\r',
      '\nabc',
      'def',
    ];
    const raw = net.createServer((socket) => {
      socket.once('data', async () => {
        for (const piece of pieces) {
          socket.write(piece);
          await new Promise((resolve) => setTimeout(resolve, 30));
        }
        socket.end();
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    try {
      const rawClient = new S3Client({
        endpoint: `http://127.0.0.1:${(raw.address() as AddressInfo).port}`,
        region: 'us-east-1',
        forcePathStyle: true,
        maxAttempts: 1,
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      });
      const sink = collectingSink();
      await getRangeDirect(rawClient, 'bucket', 'k', 2, 6, sink);
      expect(sink.bytes().toString()).toBe('abcdef');
      expect(sink.restarts).toBe(1);
    } finally {
      await new Promise<void>((resolve) => raw.close(() => resolve()));
    }
  });
});

describe('getRangeDirect over TLS', () => {
  it('reads a range from an https endpoint, checking its certificate', async () => {
    const fixture = (name: string) => readFileSync(new URL(`../../test/fixtures/${name}`, import.meta.url), 'utf8');
    const cert = fixture('loopback-tls.crt');
    const secure = https.createServer({ cert, key: fixture('loopback-tls.key') }, (req, res) => serveRange(req, res, object));
    let handshakes = 0;
    secure.on('secureConnection', () => handshakes++);
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    const endpoint = `https://127.0.0.1:${(secure.address() as AddressInfo).port}`;
    const client = (maxAttempts: number) =>
      new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts, credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
    const defaults = tls.getCACertificates('default');
    try {
      // Untrusted, the certificate is refused.
      await expect(getRangeDirect(client(1), 'bucket', 'k', 0, 10, collectingSink())).rejects.toThrow(/self-signed certificate/);
      tls.setDefaultCACertificates([...defaults, cert]);
      const sink = collectingSink();
      await getRangeDirect(client(1), 'bucket', 'k', 100, 1 << 20, sink);
      expect(sink.bytes().equals(object.subarray(100, 100 + (1 << 20)))).toBe(true);
      // The next reads go on the same connection, one whose sink pauses the socket after every read among them:
      // a kept connection must read again for the next answer, however its last one ended.
      const slow = collectingSink();
      const slowSink: BodySink = {
        restart: () => slow.restart(),
        write: (p) => slow.write(p),
        ready: () => new Promise<void>((resolve) => setImmediate(resolve)),
      };
      await getRangeDirect(client(1), 'bucket', 'k', 0, 2 << 20, slowSink);
      expect(slow.bytes().equals(object.subarray(0, 2 << 20))).toBe(true);
      const last = collectingSink();
      await getRangeDirect(client(1), 'bucket', 'k', 5, 1000, last);
      expect(last.bytes().equals(object.subarray(5, 1005))).toBe(true);
      expect(handshakes).toBe(1);
    } finally {
      tls.setDefaultCACertificates(defaults);
      secure.closeAllConnections();
      await new Promise<void>((resolve) => secure.close(() => resolve()));
    }
  });
});

describe('signedQueryString', () => {
  it('sorts keys and escapes as SigV4 does', () => {
    expect(signedQueryString({ 'x-id': 'GetObject' })).toBe('x-id=GetObject');
    expect(signedQueryString({ b: "it's (a)*!", a: null, c: ['2', '1'] })).toBe('a&b=it%27s%20%28a%29%2A%21&c=2&c=1');
    expect(signedQueryString(undefined)).toBe('');
  });
});
