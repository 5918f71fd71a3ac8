// Connections to the S3 endpoint kept open between the agent's own requests (pack PUTs, ranged GETs), one request on each at a time.
//
// A pack is 8 MiB and a checkpoint of 64 GiB sends thousands of them: a new TCP (and, against S3, TLS)
// connection for each would add round trips and a handshake's CPU to every pack. A connection whose answer
// ended cleanly (its length known and read to the end, nothing more sent, the server not closing) waits here
// for the next request to the same endpoint, for a short while, reading all the time so that a server's close
// is seen at once. Each connection reads into one buffer of its own, or into where its current request says.
import net from 'node:net';
import tls from 'node:tls';
import { BufferPool } from './buffer-pool.ts';
import { transientError } from './http-response-framing.ts';

/** What a connection's current request does with what the socket reports. */
export interface ConnectionUser {
  /** Where the next read goes: the connection's own buffer, or memory of the request's. */
  nextReadTarget(): Uint8Array;
  /** Bytes read; false pauses reading. */
  onRead(length: number, buffer: Buffer): boolean;
  /** The server closed its side. */
  onEnd(): void;
  /** The connection failed, timed out or closed. */
  onError(error: Error): void;
}

const READ_BUFFER_BYTES = 256 << 10;
/**
 * Read buffers of closed connections, for the next ones: a restore allocates one per concurrent read, once. (A
 * new buffer per request left 64 MiB of dead ones in the heap by the end of a 2 GiB restore.)
 */
const readBuffers = new BufferPool(READ_BUFFER_BYTES);
/** How long an idle connection waits for the next request: shorter than servers' own keep-alive (5 s for Node's, 20 s for S3's). */
const IDLE_MS = 2000;
/** Idle connections kept per endpoint, at most: more than the most requests the agent has in flight. */
const MAX_IDLE_PER_ENDPOINT = 32;

const idle = new Map<string, KeptAliveConnection[]>();

export class KeptAliveConnection {
  readonly socket: net.Socket;
  readonly readBuffer: Buffer;
  /** Whether it carried a request before this one: a failure before any answer may then be a server's close of an idle connection. */
  reused = false;
  private readonly endpoint: string;
  private user: ConnectionUser | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(protocol: string, hostname: string, port: number, connectTimeoutMs: number) {
    this.endpoint = endpointKey(protocol, hostname, port);
    const buffer = readBuffers.take();
    this.readBuffer = buffer;
    const onread = {
      buffer: () => this.user?.nextReadTarget() ?? buffer,
      callback: (length: number, target: Buffer): boolean => {
        if (this.user) return this.user.onRead(length, target);
        // Bytes nobody asked for: the connection is not in a state to reuse.
        this.socket.destroy();
        return false;
      },
    };
    this.socket =
      protocol === 'https:'
        ? tls.connect({ host: hostname, port, servername: net.isIP(hostname) ? undefined : hostname, onread } as tls.ConnectionOptions)
        : net.connect({ host: hostname, port, onread });
    this.socket.setNoDelay(true);
    const connectTimer = setTimeout(
      () => this.fail(transientError(`timed out: no connection to the S3 endpoint ${hostname}:${port} within ${connectTimeoutMs} ms`, 'ETIMEDOUT')),
      connectTimeoutMs,
    );
    this.socket.once('connect', () => clearTimeout(connectTimer));
    this.socket.on('timeout', () => this.fail(transientError(`timed out: no byte from the S3 endpoint for ${this.socket.timeout} ms`, 'ETIMEDOUT')));
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('end', () => {
      if (this.user) this.user.onEnd();
      else this.socket.destroy();
    });
    this.socket.on('close', () => {
      clearTimeout(connectTimer);
      this.closed = true;
      this.forgetIdle();
      this.fail(transientError('the connection to the S3 endpoint closed before the answer ended', 'ECONNRESET'));
      // Closed: nothing reads into the buffer any more.
      readBuffers.release(buffer);
    });
  }

  /** Hands the connection to a request, with its idle timeout. */
  attach(user: ConnectionUser, socketIdleTimeoutMs: number): void {
    this.user = user;
    clearTimeout(this.idleTimer);
    this.socket.ref();
    this.socket.setTimeout(socketIdleTimeoutMs);
    // Reading may have been stopped under the last request (a sink that paused it) even though its answer
    // ended: over TLS, records already decrypted are still delivered after a pause.
    this.socket.resume();
  }

  /**
   * The request is done with it: kept for the next request to the same endpoint when `reusable` (its answer
   * ended cleanly), else closed.
   */
  detach(reusable: boolean): void {
    this.user = undefined;
    const list = idle.get(this.endpoint) ?? [];
    if (!reusable || this.closed || this.socket.destroyed || this.socket.writableLength > 0 || list.length >= MAX_IDLE_PER_ENDPOINT) {
      this.socket.destroy();
      return;
    }
    this.socket.setTimeout(0);
    // Waiting does not keep the agent alive; it reads, so that the server's close is seen.
    this.socket.unref();
    setImmediate(() => {
      if (!this.user && !this.socket.destroyed) this.socket.resume();
    }).unref();
    this.reused = true;
    list.push(this);
    idle.set(this.endpoint, list);
    this.idleTimer = setTimeout(() => this.socket.destroy(), IDLE_MS);
    this.idleTimer.unref();
  }

  private fail(error: Error): void {
    const user = this.user;
    this.user = undefined;
    this.socket.destroy();
    user?.onError(error);
  }

  private forgetIdle(): void {
    clearTimeout(this.idleTimer);
    const list = idle.get(this.endpoint);
    const at = list?.indexOf(this) ?? -1;
    if (at >= 0) list!.splice(at, 1);
    if (list?.length === 0) idle.delete(this.endpoint);
  }

  /** An idle connection to the endpoint (taken out of the pool), or a new one. */
  static take(protocol: string, hostname: string, port: number, connectTimeoutMs: number): KeptAliveConnection {
    const list = idle.get(endpointKey(protocol, hostname, port));
    while (list && list.length > 0) {
      const connection = list.pop()!;
      connection.forgetIdle();
      if (!connection.closed && !connection.socket.destroyed) return connection;
    }
    return new KeptAliveConnection(protocol, hostname, port, connectTimeoutMs);
  }
}

function endpointKey(protocol: string, hostname: string, port: number): string {
  return `${protocol}//${hostname}:${port}`;
}
