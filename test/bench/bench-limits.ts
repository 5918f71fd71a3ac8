// The benchmark's S3 limits: plain signed, unsigned-payload PUTs of 8 MiB pieces of some files' bytes and plain ranged GETs of them back, at the fastest in-flight count.
//
// These are the baselines spotsnap is compared with, so they must be the fastest plain way to move the same
// bytes: one keep-alive connection and one reused buffer per request in flight (plain-http-connection.ts),
// each request signed (plain-sigv4.ts) but no SDK, no checksum, nothing kept of a download. The in-flight count that is fastest depends on the server and the
// cores, so each is measured at several and the fastest is reported.
import { statSync } from 'node:fs';
import { FileSequence } from './file-sequence.ts';
import { PlainConnection } from './plain-http-connection.ts';
import { signedHeaders, type PlainCredentials } from './plain-sigv4.ts';

export interface PlainTransferOptions {
  /** In-flight counts to try, in order (default 4, 8, 16, 32). */
  inFlight?: readonly number[];
  /** Stop at the first count slower than the best so far (default true): larger ones are rarely faster then. */
  adaptive?: boolean;
  /** Bytes per object (default 8 MiB, the agent's pack size). */
  pieceBytes?: number;
  /** Key prefix of the pieces (default `bench-limits/`); piece i is `<prefix>piece-<i, 6 digits>`. */
  prefix?: string;
  /** Default: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment, else `test`/`test` (emulators take any). */
  credentials?: PlainCredentials;
  /** Default: AWS_REGION, else us-east-1. */
  region?: string;
}

export interface PlainTransfer {
  /** Seconds of the fastest trial. */
  seconds: number;
  /** Bytes moved in one trial (the files' size). */
  bytes: number;
  /** Requests in flight in the fastest trial. */
  inFlight: number;
  mibPerSecond: number;
  /** Objects of one trial. */
  pieces: number;
  /** Every trial, in the order run. */
  trials: Array<{ inFlight: number; seconds: number }>;
}

const DEFAULT_IN_FLIGHT = [4, 8, 16, 32] as const;
const DEFAULT_PIECE_BYTES = 8 << 20;

/** The keys measurePlainUpload writes for `bytes` bytes of files (to delete them afterwards). */
export function plainPieceKeys(bytes: number, options: PlainTransferOptions = {}): string[] {
  const pieceBytes = options.pieceBytes ?? DEFAULT_PIECE_BYTES;
  const prefix = options.prefix ?? 'bench-limits/';
  return Array.from({ length: Math.ceil(bytes / pieceBytes) }, (_, i) => `${prefix}piece-${String(i).padStart(6, '0')}`);
}

interface Target {
  hostname: string;
  port: number;
  host: string;
  bucket: string;
  credentials: PlainCredentials;
  region: string;
}

function targetOf(endpoint: string, bucket: string, options: PlainTransferOptions): Target {
  const url = new URL(endpoint);
  if (url.protocol !== 'http:') throw new Error(`plain S3 limits: the endpoint ${JSON.stringify(endpoint)} is not http://HOST:PORT (path-style, plain HTTP)`);
  const credentials = options.credentials ?? {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID || 'test',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY || 'test',
  };
  return {
    hostname: url.hostname,
    port: Number(url.port || 80),
    host: url.host,
    bucket,
    credentials,
    region: options.region ?? (process.env.AWS_REGION || 'us-east-1'),
  };
}

const keyPath = (target: Target, key: string) => `/${encodeURIComponent(target.bucket)}/${key.split('/').map(encodeURIComponent).join('/')}`;

/** Sends one signed request on `connection` and resolves with its status once the answer ended; a 2xx body goes to `onBody`. */
function send(
  connection: PlainConnection,
  target: Target,
  method: 'PUT' | 'GET',
  key: string,
  extra: Record<string, string>,
  body: Buffer | undefined,
  onBody: (piece: Buffer) => void,
): Promise<number> {
  const path = keyPath(target, key);
  const headers = signedHeaders({ method, host: target.host, path, headers: extra }, target.credentials, target.region);
  const head = [`${method} ${path} HTTP/1.1`, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)].join('\r\n');
  return connection.request(head, body, onBody).catch((error: Error) => {
    throw new Error(`plain ${error.message}`);
  });
}

type Transfer = (i: number, buffer: Buffer, connection: PlainConnection) => Promise<void>;

/** Runs `pieces` transfers with `inFlight` at a time, each slot with a connection and a buffer of `bufferBytes` of its own; resolves with the seconds it took. */
async function trial(target: Target, pieces: number, inFlight: number, bufferBytes: number, run: Transfer): Promise<number> {
  const connections: PlainConnection[] = [];
  let next = 0;
  let failed = false;
  const started = performance.now();
  const slots = await Promise.allSettled(
    Array.from({ length: Math.min(inFlight, pieces) }, async () => {
      const buffer = Buffer.allocUnsafe(bufferBytes);
      const connection = new PlainConnection(target.hostname, target.port);
      connections.push(connection);
      try {
        while (!failed && next < pieces) await run(next++, buffer, connection);
      } catch (error) {
        // The other slots stop after their current request: one failure ends the trial.
        failed = true;
        throw error;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  for (const connection of connections) connection.close();
  const failure = slots.find((s) => s.status === 'rejected');
  if (failure) throw failure.reason;
  return seconds;
}

async function fastest(target: Target, bytes: number, options: PlainTransferOptions, bufferBytes: number, run: Transfer): Promise<PlainTransfer> {
  const pieceBytes = options.pieceBytes ?? DEFAULT_PIECE_BYTES;
  const counts = options.inFlight ?? DEFAULT_IN_FLIGHT;
  if (counts.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`plain S3 limits: inFlight must list positive integers, not ${JSON.stringify(counts)}`);
  const pieces = Math.ceil(bytes / pieceBytes);
  const trials: PlainTransfer['trials'] = [];
  let best: { inFlight: number; seconds: number } | undefined;
  for (const inFlight of counts) {
    const seconds = await trial(target, pieces, inFlight, bufferBytes, run);
    trials.push({ inFlight, seconds });
    if (!best || seconds < best.seconds) best = { inFlight, seconds };
    else if (options.adaptive ?? true) break;
  }
  return { ...best!, bytes, pieces, trials, mibPerSecond: bytes / (1 << 20) / best!.seconds };
}

/** A file, or files whose bytes are sent one after the other as if they were one (a dump's images, uncopied). */
export type PlainSource = string | readonly string[];

const pathsOf = (source: PlainSource): readonly string[] => (typeof source === 'string' ? [source] : source);

/**
 * PUTs the bytes of `source` (on tmpfs, so reading them costs a copy) as objects of `pieceBytes` under `prefix`
 * in `bucket`, which must exist: each request signed, with an unsigned payload and no checksum, the fewest
 * headers S3 takes. Reading each piece into its slot's buffer is part of the time. Repeated at each in-flight
 * count; the objects of the last trial stay for measurePlainDownload.
 */
export async function measurePlainUpload(endpoint: string, bucket: string, source: PlainSource, options: PlainTransferOptions = {}): Promise<PlainTransfer> {
  const target = targetOf(endpoint, bucket, options);
  const pieceBytes = options.pieceBytes ?? DEFAULT_PIECE_BYTES;
  const sequence = new FileSequence(pathsOf(source));
  try {
    const bytes = sequence.bytes;
    const keys = plainPieceKeys(bytes, options);
    return await fastest(target, bytes, options, pieceBytes, async (i, buffer, connection) => {
      const length = Math.min(pieceBytes, bytes - i * pieceBytes);
      sequence.read(buffer, length, i * pieceBytes);
      await send(connection, target, 'PUT', keys[i]!, { 'content-length': String(length) }, buffer.subarray(0, length), () => undefined);
    });
  } finally {
    sequence.close();
  }
}

/**
 * GETs back what measurePlainUpload stored for `source` (same options), one ranged GET per piece, the bytes
 * counted and dropped as they arrive. Rejects unless every range came whole.
 */
export async function measurePlainDownload(endpoint: string, bucket: string, source: PlainSource, options: PlainTransferOptions = {}): Promise<PlainTransfer> {
  const target = targetOf(endpoint, bucket, options);
  const pieceBytes = options.pieceBytes ?? DEFAULT_PIECE_BYTES;
  const bytes = pathsOf(source).reduce((sum, file) => sum + statSync(file).size, 0);
  const keys = plainPieceKeys(bytes, options);
  return fastest(target, bytes, options, 0, async (i, _buffer, connection) => {
    const length = Math.min(pieceBytes, bytes - i * pieceBytes);
    let received = 0;
    const status = await send(connection, target, 'GET', keys[i]!, { range: `bytes=0-${length - 1}` }, undefined, (piece) => (received += piece.length));
    if (status !== 206 || received !== length)
      throw new Error(`plain GET of ${keys[i]} bytes 0-${length - 1}: status ${status} with ${received} bytes, not 206 with ${length}`);
  });
}
