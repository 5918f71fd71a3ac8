// Sends one signed request on a connection of its own, its body straight from the caller's buffers, reading the answer into a reused buffer and the body into a sink.
import net from 'node:net';
import { Readable } from 'node:stream';
import tls from 'node:tls';
import { BufferPool } from './buffer-pool.ts';
import { ChunkedDecoder, framingOf, parseHead, transientError, type Framing, type ParsedHead } from './http-response-framing.ts';
import { S3_LIMITS, type S3Limits } from '../shared/limits.ts';

/** Receives a response body, piece by piece, in order. */
export interface BodySink {
  /** An attempt starts delivering the body from its first byte (again, after a retry). */
  restart(): void;
  /**
   * The next bytes of the body: valid only during the call. Throwing stops the transfer with that error. When
   * `into` named where they go, they are already there (`piece` is a view of that memory).
   */
  write(piece: Buffer): void;
  /**
   * Where the socket may read the next body bytes straight into, at most `bytes` of them (what is left of the
   * body): a view the sink will be handed back in `write`, so that those bytes are not copied again. Undefined,
   * or no method, reads them into the connection's own buffer.
   */
  into?(bytes: number): Uint8Array | undefined;
  /**
   * Asked after each read of body bytes: a promise when the sink wants no more for now (its buffers are all
   * out); nothing more is read from the socket until it settles (a rejection stops the transfer with it).
   */
  ready?(): Promise<void> | undefined;
}

/** The parts of the SDK's signed request this transport sends (`HttpRequest` of @smithy/protocol-http). */
export interface SignedRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | Array<string | null> | null>;
  headers: Record<string, string>;
}

/** The shape of response the SDK's deserializers take (`HttpResponse` of @smithy/protocol-http). */
export interface PlainResponse {
  statusCode: number;
  reason?: string;
  headers: Record<string, string>;
  body: Readable;
}

const READ_BUFFER_BYTES = 256 << 10;
/**
 * Read buffers of closed connections, for the next ones: a restore allocates one per concurrent read, once. (A
 * new buffer per request left 64 MiB of dead ones in the heap by the end of a 2 GiB restore.)
 */
const readBuffers = new BufferPool(READ_BUFFER_BYTES);
const MAX_HEAD_BYTES = 64 << 10;
const EMPTY = Buffer.alloc(0);
/** An error response's body is kept for the SDK to parse (S3 error documents are a few hundred bytes). */
const MAX_ERROR_BODY_BYTES = 1 << 20;

/** The query string as the SDK signs it: RFC 3986 escapes (`!'()*` too), repeated keys for arrays. */
export function signedQueryString(query: SignedRequest['query'] = {}): string {
  const escapeRfc3986 = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const parts: string[] = [];
  for (const key of Object.keys(query).sort()) {
    const value = query[key];
    if (Array.isArray(value)) for (const v of value) parts.push(v === null ? escapeRfc3986(key) : `${escapeRfc3986(key)}=${escapeRfc3986(v)}`);
    else parts.push(value === null || value === undefined ? escapeRfc3986(key) : `${escapeRfc3986(key)}=${escapeRfc3986(value)}`);
  }
  return parts.join('&');
}

/** What a request sends after its head, and what stops it. */
export interface SendOptions {
  /**
   * The request's body, in order: its buffers are written to the socket as they are (no copy is made), and
   * must not change until the answer settles. Their total must be the request's content-length.
   */
  body?: readonly Uint8Array[];
  /** Aborting it drops the connection and rejects with its reason. */
  signal?: AbortSignal;
}

/** A sink for answers that carry no body the caller wants (a PUT's): any bytes are dropped. */
export const DISCARD_BODY: BodySink = { restart: () => undefined, write: () => undefined };

/**
 * Sends one signed request on a connection of its own and reads the answer. A 2xx body goes to `sink`; any
 * other answer's body is kept and handed back for the SDK to turn into its error (and retry when it should).
 * A connection not made within `limits.connectTimeoutMs`, or silent for `limits.socketIdleTimeoutMs`, is dropped
 * with a transient error, which the SDK retries.
 */
export function sendDirect(request: SignedRequest, sink: BodySink, limits: S3Limits = S3_LIMITS, options: SendOptions = {}): Promise<PlainResponse> {
  const { body: requestBody, signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<PlainResponse>((resolve, reject) => {
    const readBuffer = readBuffers.take();
    /** Bytes of a head that did not fit in one read (copied: the read buffer is reused). */
    let headSoFar = EMPTY;
    let head: ParsedHead | undefined;
    let framing: Framing | undefined;
    let chunked: ChunkedDecoder | undefined;
    const errorBody: Buffer[] = [];
    let errorBodyBytes = 0;
    let settled = false;

    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(error);
    };
    const onAbort = (): void => fail(signal!.reason);
    const finish = (): void => {
      if (settled || !head) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      const ok = head.statusCode >= 200 && head.statusCode < 300;
      resolve({ statusCode: head.statusCode, reason: head.reason, headers: head.headers, body: Readable.from(ok ? [] : [Buffer.concat(errorBody)]) });
    };
    const deliver = (data: Buffer): void => {
      if (head!.statusCode >= 200 && head!.statusCode < 300) sink.write(data);
      else if (errorBodyBytes < MAX_ERROR_BODY_BYTES) {
        const kept = data.subarray(0, MAX_ERROR_BODY_BYTES - errorBodyBytes);
        errorBody.push(Buffer.from(kept));
        errorBodyBytes += kept.length;
      }
    };
    const body = (piece: Buffer): void => {
      if (framing!.kind === 'close') deliver(piece);
      else if (framing!.kind === 'chunked') {
        if (chunked!.feed(piece, deliver).ended) finish();
      } else {
        const take = piece.subarray(0, framing!.remaining);
        framing!.remaining -= take.length;
        if (take.length > 0) deliver(take);
        if (framing!.remaining === 0) finish();
      }
    };
    const onRead = (length: number, buffer: Buffer): boolean => {
      if (settled) return false;
      try {
        let piece = buffer.subarray(0, length);
        while (!head) {
          // Usually the whole head is in the first read, and the body bytes after it are used in place.
          const joined = headSoFar.length > 0 ? Buffer.concat([headSoFar, piece]) : piece;
          const end = joined.indexOf('\r\n\r\n');
          if (end < 0) {
            if (joined.length > MAX_HEAD_BYTES) throw transientError('the S3 endpoint sent response headers over 64 KiB', 'ECONNRESET');
            headSoFar = Buffer.from(joined);
            return true;
          }
          const parsed = parseHead(joined.subarray(0, end).toString('latin1'));
          piece = joined.subarray(end + 4);
          headSoFar = EMPTY;
          // An interim answer (100 Continue) is followed by the real one.
          if (parsed.statusCode >= 100 && parsed.statusCode < 200) {
            if (piece.length === 0) return true;
            continue;
          }
          head = parsed;
          framing = framingOf(head, request.method);
          if (framing.kind === 'chunked') chunked = new ChunkedDecoder();
          if (head.statusCode >= 200 && head.statusCode < 300) sink.restart();
          if (framing.kind === 'length' && framing.remaining === 0) {
            finish();
            return false;
          }
        }
        if (piece.length > 0) body(piece);
        const wait = settled || head.statusCode < 200 || head.statusCode >= 300 ? undefined : sink.ready?.();
        if (wait) {
          wait.then(
            () => {
              if (!settled) socket.resume();
            },
            (error: unknown) => fail(error),
          );
          return false;
        }
      } catch (error) {
        fail(error);
      }
      return !settled;
    };

    const port = request.port ?? (request.protocol === 'https:' ? 443 : 80);
    // Before each read: once the head is in and the body's length known, straight into the sink's memory.
    const nextReadTarget = (): Uint8Array => {
      if (!head || settled || framing?.kind !== 'length' || framing.remaining <= 0 || head.statusCode < 200 || head.statusCode >= 300) return readBuffer;
      const target = sink.into?.(framing.remaining);
      return target && target.length > 0 ? target : readBuffer;
    };
    const onread = { buffer: nextReadTarget, callback: onRead };
    const socket =
      request.protocol === 'https:'
        ? tls.connect({ host: request.hostname, port, servername: net.isIP(request.hostname) ? undefined : request.hostname, onread } as tls.ConnectionOptions)
        : net.connect({ host: request.hostname, port, onread });
    socket.setNoDelay(true);
    const connectTimer = setTimeout(
      () => fail(transientError(`timed out: no connection to the S3 endpoint ${request.hostname}:${port} within ${limits.connectTimeoutMs} ms`, 'ETIMEDOUT')),
      limits.connectTimeoutMs,
    );
    socket.once('connect', () => clearTimeout(connectTimer));
    socket.setTimeout(limits.socketIdleTimeoutMs, () =>
      fail(transientError(`timed out: no byte from the S3 endpoint for ${limits.socketIdleTimeoutMs} ms`, 'ETIMEDOUT')),
    );
    socket.on('error', fail);
    socket.on('end', () => {
      if (head && framing?.kind === 'close') finish();
      else fail(transientError(`the S3 endpoint closed the connection ${head ? 'before the end of the body' : 'before answering'}`, 'ECONNRESET'));
    });
    socket.on('close', () => {
      clearTimeout(connectTimer);
      fail(transientError('the connection to the S3 endpoint closed before the answer ended', 'ECONNRESET'));
      // Closed: nothing reads into the buffer any more.
      readBuffers.release(readBuffer);
    });

    const query = signedQueryString(request.query);
    const lines = [`${request.method} ${request.path}${query ? `?${query}` : ''} HTTP/1.1`];
    const headers: Record<string, string> = { ...request.headers };
    const names = new Set(Object.keys(headers).map((h) => h.toLowerCase()));
    if (!names.has('host')) headers.host = request.port ? `${request.hostname}:${request.port}` : request.hostname;
    // One connection per request: a range is megabytes, so a connect is a small part of its time.
    headers.connection = 'close';
    for (const [name, value] of Object.entries(headers)) {
      if (/[\r\n]/.test(name) || /[\r\n]/.test(String(value)))
        return fail(new Error(`refusing to send header ${JSON.stringify(name)} with a line break in it`));
      lines.push(`${name}: ${value}`);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    // The head and every part of the body in one write of many buffers, once connected.
    socket.cork();
    socket.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
    for (const part of requestBody ?? []) if (part.length > 0) socket.write(part);
    socket.uncork();
  });
}
