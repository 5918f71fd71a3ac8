// The S3 transports obey limits.ts: an endpoint that never answers, or never accepts, ends in a timeout error, not a hang.
import { GetObjectCommand } from '@aws-sdk/client-s3';
import net, { type AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { sendDirect, type BodySink } from '../transfer/direct-range-get.ts';
import { S3_LIMITS, type S3Limits } from './limits.ts';
import { createS3Client, SnapshotStore } from '../store/snapshot-store.ts';

/** Short limits, so each case ends in well under a second once the limits apply. */
const SHORT: S3Limits = { connectTimeoutMs: 200, socketIdleTimeoutMs: 300, maxAttempts: 2 };
/**
 * For a server that accepts and then says nothing: the connect limit long, so that a stalled test worker (whose
 * timers run before it sees the connection made) never turns the idle timeout asserted into a connect timeout.
 */
const SILENT: S3Limits = { ...SHORT, connectTimeoutMs: 5_000 };
/** Guards against the hang these tests are about: without the limits they would wait forever. */
const HANG_GUARD_MS = 20_000;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.unstubAllEnvs();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A TCP server on 127.0.0.1 that accepts every connection, reads what is sent, and never answers. */
async function silentServer(): Promise<{ port: number; connected: (n: number) => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  let connections = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.resume();
    connections++;
    for (const w of waiters.filter((w) => connections >= w.n)) w.resolve();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    port: (server.address() as AddressInfo).port,
    connected: (n) => (connections >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

/**
 * A listening port on 127.0.0.1 whose connections never complete: the listener's thread never accepts, and
 * once its backlog is full the kernel drops every new SYN, as a black-holed route does.
 */
async function unacceptingPort(): Promise<number> {
  const wake = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const server = require('node:net').createServer();
     server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
       parentPort.postMessage(server.address().port);
       Atomics.wait(workerData, 0, 0);
       server.close();
     });`,
    { eval: true, workerData: wake },
  );
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // Fill the accept queue (backlog 1 holds two connections) with connections that did complete.
  const fillers: net.Socket[] = [];
  cleanups.push(async () => {
    for (const s of fillers) s.destroy();
    Atomics.store(wake, 0, 1);
    Atomics.notify(wake, 0);
    await new Promise((resolve) => worker.once('exit', resolve));
  });
  for (let i = 0; i < 2; i++) {
    const socket = net.connect({ host: '127.0.0.1', port });
    fillers.push(socket);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  }
  return port;
}

/** Points the SDK's standard environment at a local endpoint, with static credentials and no metadata lookups. */
function useEndpoint(port: number): NodeJS.ProcessEnv {
  const env = { AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, AWS_REGION: 'us-east-1' };
  for (const [name, value] of Object.entries({ ...env, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_EC2_METADATA_DISABLED: 'true' })) {
    vi.stubEnv(name, value);
  }
  return env;
}

const ignoringSink: BodySink = { restart: () => undefined, write: () => undefined };

function directRequest(port: number): Parameters<typeof sendDirect>[0] {
  return { method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port, path: '/bucket/key', headers: { range: 'bytes=0-9' } };
}

describe('S3 limits', () => {
  it('are the documented defaults', () => {
    expect(S3_LIMITS).toEqual({ connectTimeoutMs: 3_000, socketIdleTimeoutMs: 30_000, maxAttempts: 5 });
  });

  it('end the start-up snapshot lookup against an endpoint that never answers, after every attempt', { timeout: HANG_GUARD_MS }, async () => {
    const silent = await silentServer();
    const store = new SnapshotStore(createS3Client(useEndpoint(silent.port), SILENT), { bucket: 'b', prefix: 'p' }, 'job-1');
    await expect(store.committedSnapshotIds()).rejects.toThrow(/timed out after 300 ms of inactivity/);
    await silent.connected(SILENT.maxAttempts);
  });

  it('end an SDK request to a port that never accepts at the connect timeout', { timeout: HANG_GUARD_MS }, async () => {
    const port = await unacceptingPort();
    const client = createS3Client(useEndpoint(port), { ...SHORT, maxAttempts: 1 });
    await expect(client.send(new GetObjectCommand({ Bucket: 'b', Key: 'k' }))).rejects.toThrow(
      /did not establish a connection with the server within the configured timeout of 200 ms/,
    );
  });

  it('end a restore ranged read from an endpoint that never answers', { timeout: HANG_GUARD_MS }, async () => {
    const silent = await silentServer();
    const error = await sendDirect(directRequest(silent.port), ignoringSink, SILENT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/timed out: no byte from the S3 endpoint for 300 ms/);
    // ETIMEDOUT is a code the SDK retries as transient.
    expect((error as { code?: string }).code).toBe('ETIMEDOUT');
  });

  it('end a restore ranged read from a port that never accepts at the connect timeout', { timeout: HANG_GUARD_MS }, async () => {
    const port = await unacceptingPort();
    const error = await sendDirect(directRequest(port), ignoringSink, SHORT).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(new RegExp(`timed out: no connection to the S3 endpoint 127\\.0\\.0\\.1:${port} within 200 ms`));
    expect((error as { code?: string }).code).toBe('ETIMEDOUT');
  });
});
