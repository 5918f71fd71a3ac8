// Sends one signed request on a kept-alive connection, its body straight from the caller's buffers, reading the answer into the connection's buffer and the body into a sink.
import { Readable } from 'node:stream';
import { KeptAliveConnection } from './kept-alive-connections.ts';
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

/** A request that failed on a kept-alive connection before any answer: the server may have closed it as it went out. */
class StaleConnectionError extends Error {
  override readonly cause: unknown;
  constructor(cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.cause = cause;
  }
}

/**
 * Sends one signed request and reads the answer, on a connection kept alive from an earlier request to the
 * same endpoint or a new one (kept-alive-connections.ts). A 2xx body goes to `sink`; any other answer's body is
 * kept and handed back for the SDK to turn into its error (and retry when it should). A connection not made
 * within `limits.connectTimeoutMs`, or silent for `limits.socketIdleTimeoutMs`, is dropped with a transient
 * error, which the SDK retries. A kept-alive connection that fails before any answer is replaced once by a new
 * one, at once (the server closed it while it waited).
 */
export function sendDirect(request: SignedRequest, sink: BodySink, limits: S3Limits = S3_LIMITS, options: SendOptions = {}): Promise<PlainResponse> {
  if (options.signal?.aborted) return Promise.reject(options.signal.reason);
  let head: string;
  try {
    head = requestHead(request);
  } catch (error) {
    return Promise.reject(error);
  }
  const port = request.port ?? (request.protocol === 'https:' ? 443 : 80);
  const connection = KeptAliveConnection.take(request.protocol, request.hostname, port, limits.connectTimeoutMs);
  return sendOn(connection, head, request.method, sink, limits, options).catch((error: unknown) => {
    if (!(error instanceof StaleConnectionError)) throw error;
    if (options.signal?.aborted) throw options.signal.reason;
    const fresh = new KeptAliveConnection(request.protocol, request.hostname, port, limits.connectTimeoutMs);
    return sendOn(fresh, head, request.method, sink, limits, options).catch((again: unknown) => {
      throw again instanceof StaleConnectionError ? again.cause : again;
    });
  });
}

/** The request's head as it goes on the wire; refuses a header with a line break in it. */
function requestHead(request: SignedRequest): string {
  const query = signedQueryString(request.query);
  const lines = [`${request.method} ${request.path}${query ? `?${query}` : ''} HTTP/1.1`];
  const headers: Record<string, string> = { ...request.headers };
  const names = new Set(Object.keys(headers).map((h) => h.toLowerCase()));
  if (!names.has('host')) headers.host = request.port ? `${request.hostname}:${request.port}` : request.hostname;
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(String(value))) throw new Error(`refusing to send header ${JSON.stringify(name)} with a line break in it`);
    lines.push(`${name}: ${value}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function sendOn(
  connection: KeptAliveConnection,
  requestHeadText: string,
  method: string,
  sink: BodySink,
  limits: S3Limits,
  options: SendOptions,
): Promise<PlainResponse> {
  const { body: requestBody, signal } = options;
  return new Promise<PlainResponse>((resolve, reject) => {
    const { readBuffer } = connection;
    /** Bytes of a head that did not fit in one read (copied: the read buffer is reused). */
    let headSoFar = EMPTY;
    let head: ParsedHead | undefined;
    let framing: Framing | undefined;
    let chunked: ChunkedDecoder | undefined;
    const errorBody: Buffer[] = [];
    let errorBodyBytes = 0;
    let settled = false;
    /** Whether any byte of an answer arrived, and whether the server sent bytes past the end of the body. */
    let answered = false;
    let bytesPastBody = false;
    /** Whether the connection went back to be kept alive: the read that ended the answer then goes on reading. */
    let kept = false;

    const fail = (error: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      connection.detach(false);
      // A reset, a broken pipe or a close before any answer, on a connection that had waited: the server's close.
      const code = error instanceof Error ? (error as { code?: string }).code : undefined;
      const stale = connection.reused && !answered && !signal?.aborted && (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED');
      reject(stale ? new StaleConnectionError(error) : error);
    };
    const onAbort = (): void => fail(signal!.reason);
    const finish = (): void => {
      if (settled || !head) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      const ok = head.statusCode >= 200 && head.statusCode < 300;
      // Kept alive only when the answer ended where its length said, the server keeps the connection, and it
      // read the whole request (a refusal may come before the body was read).
      kept = framing?.kind === 'length' && !bytesPastBody && !/(^|,)\s*close\s*(,|$)/i.test(head.headers.connection ?? '') && (ok || !requestBody?.length);
      connection.detach(kept);
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
        if (take.length < piece.length) bytesPastBody = true;
        if (take.length > 0) deliver(take);
        if (framing!.remaining === 0) finish();
      }
    };
    const onRead = (length: number, buffer: Buffer): boolean => {
      if (settled) return false;
      answered = true;
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
          framing = framingOf(head, method);
          if (framing.kind === 'chunked') chunked = new ChunkedDecoder();
          if (head.statusCode >= 200 && head.statusCode < 300) sink.restart();
          if (framing.kind === 'length' && framing.remaining === 0) {
            if (piece.length > 0) bytesPastBody = true;
            finish();
            return kept;
          }
        }
        if (piece.length > 0) body(piece);
        const wait = settled || head.statusCode < 200 || head.statusCode >= 300 ? undefined : sink.ready?.();
        if (wait) {
          wait.then(
            () => {
              if (!settled) connection.socket.resume();
            },
            (error: unknown) => fail(error),
          );
          return false;
        }
      } catch (error) {
        fail(error);
      }
      // A kept connection reads on (idle), so that the server's close is seen while it waits.
      return settled ? kept : true;
    };

    // Before each read: once the head is in and the body's length known, straight into the sink's memory.
    const nextReadTarget = (): Uint8Array => {
      if (!head || settled || framing?.kind !== 'length' || framing.remaining <= 0 || head.statusCode < 200 || head.statusCode >= 300) return readBuffer;
      const target = sink.into?.(framing.remaining);
      return target && target.length > 0 ? target : readBuffer;
    };
    connection.attach(
      {
        nextReadTarget,
        onRead,
        onEnd: () => {
          if (head && framing?.kind === 'close') finish();
          else fail(transientError(`the S3 endpoint closed the connection ${head ? 'before the end of the body' : 'before answering'}`, 'ECONNRESET'));
        },
        onError: fail,
      },
      limits.socketIdleTimeoutMs,
    );
    const socket = connection.socket;

    signal?.addEventListener('abort', onAbort, { once: true });
    // The head and every part of the body in one write of many buffers, once connected.
    socket.cork();
    socket.write(requestHeadText, 'latin1');
    for (const part of requestBody ?? []) if (part.length > 0) socket.write(part);
    socket.uncork();
  });
}
