// One keep-alive HTTP/1.1 connection for the plain S3 limits: requests one at a time, answers read into one reused buffer.
//
// node:http's client reads every socket chunk into a new buffer (a page fault per 4 KiB on this VM) before
// its parser slices the body out: a plain download through it costs more CPU than the agent's own ranged
// reads (agent/transfer/direct-range-get.ts), and a baseline slower than spotsnap is no limit. Here the
// kernel copies each read into the same buffer, and the body is handed on as views of it.
import net from 'node:net';

const READ_BUFFER_BYTES = 256 << 10;
const MAX_HEAD_BYTES = 64 << 10;
/** Bytes of an error answer kept for its message. */
const MAX_ERROR_BYTES = 4096;

interface Pending {
  resolve: (status: number) => void;
  reject: (error: Error) => void;
  /** A 2xx body, piece by piece (views valid during the call). */
  onBody: (piece: Buffer) => void;
  what: string;
  /** The request, to send once more on a new connection if a kept-alive one was closed under it. */
  request: { head: string; body: Buffer | undefined; resent: boolean };
  head: Buffer;
  status?: number;
  remaining?: number;
  close?: boolean;
  error: Buffer[];
}

export class PlainConnection {
  private socket: net.Socket | undefined;
  private pending: Pending | undefined;
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private readonly hostname: string;
  private readonly port: number;
  /** Counts an answer completed on the current socket. */
  private countAnswer: () => void = () => undefined;

  constructor(hostname: string, port: number) {
    this.hostname = hostname;
    this.port = port;
  }

  /**
   * Sends `head` (request line and headers, without the blank line) and `body`, and resolves with the status
   * once the answer's body (framed by Content-Length) ended. Any answer other than 2xx rejects with its
   * status and body. `body` must stay unchanged until then.
   */
  request(head: string, body: Buffer | undefined, onBody: (piece: Buffer) => void): Promise<number> {
    if (this.pending) return Promise.reject(new Error('a plain connection carries one request at a time'));
    const what = head.slice(0, head.indexOf(' HTTP/1.1'));
    return new Promise<number>((resolve, reject) => {
      this.pending = { resolve, reject, onBody, what, request: { head, body, resent: false }, head: Buffer.alloc(0), error: [] };
      this.write(this.socket ?? this.connect());
    });
  }

  private write(socket: net.Socket): void {
    const { head, body } = this.pending!.request;
    socket.cork();
    socket.write(`${head}\r\n\r\n`, 'latin1');
    if (body && body.length > 0) socket.write(body);
    socket.uncork();
  }

  /** Closes the connection; a request in flight is refused. */
  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
    this.fail(new Error('the plain connection was closed before the answer ended'));
  }

  private connect(): net.Socket {
    const socket = net.connect({ host: this.hostname, port: this.port, onread: { buffer: this.readBuffer, callback: (n) => this.onRead(n) } });
    socket.setNoDelay(true);
    let answered = 0;
    const gone = (reason: string) => {
      // A connection given up already (closed after an answer that said so) has no request of its own.
      if (this.socket !== socket) return;
      this.socket = undefined;
      const pending = this.pending;
      // A server may close a kept-alive connection as a request goes out on it: that request goes once more, on a new one.
      if (pending && answered > 0 && pending.status === undefined && pending.head.length === 0 && !pending.request.resent) {
        pending.request.resent = true;
        this.write(this.connect());
        return;
      }
      this.fail(new Error(`${reason} (${this.hostname}:${this.port})`));
    };
    this.countAnswer = () => {
      answered++;
    };
    socket.on('error', (e) => gone(`the plain connection failed: ${e.message}`));
    socket.on('close', () => gone('the server closed the plain connection before it answered'));
    this.socket = socket;
    return socket;
  }

  private fail(error: Error): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(new Error(`${pending.what}: ${error.message}`));
  }

  private onRead(length: number): boolean {
    const pending = this.pending;
    if (!pending) return true;
    let piece = this.readBuffer.subarray(0, length);
    try {
      if (pending.status === undefined) {
        const joined = pending.head.length > 0 ? Buffer.concat([pending.head, piece]) : piece;
        const end = joined.indexOf('\r\n\r\n');
        if (end < 0) {
          if (joined.length > MAX_HEAD_BYTES) throw new Error('the answer has no end of head within 64 KiB');
          pending.head = Buffer.from(joined);
          return true;
        }
        const text = joined.toString('latin1', 0, end);
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
        if (!status) throw new Error(`the answer begins ${JSON.stringify(text.slice(0, 60))}, not with an HTTP/1.1 status line`);
        if (status[1]!.startsWith('1')) {
          pending.head = Buffer.from(joined.subarray(end + 4));
          return true;
        }
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        if (!length) throw new Error(`the answer (${status[1]}) has no Content-Length, which the plain client needs`);
        pending.status = Number(status[1]);
        pending.remaining = Number(length[1]);
        // HTTP/1.0 closes after each answer unless it says keep-alive; HTTP/1.1 keeps the connection unless it says close.
        pending.close = text.startsWith('HTTP/1.0') ? !/\r\nconnection:\s*keep-alive/i.test(text) : /\r\nconnection:\s*close/i.test(text);
        piece = joined.subarray(end + 4);
      }
      const take = piece.subarray(0, pending.remaining);
      pending.remaining! -= take.length;
      const ok = pending.status >= 200 && pending.status < 300;
      if (ok) pending.onBody(take);
      else if (pending.error.reduce((n, b) => n + b.length, 0) < MAX_ERROR_BYTES) pending.error.push(Buffer.from(take));
      if (pending.remaining === 0) {
        this.pending = undefined;
        this.countAnswer();
        if (pending.close) this.close();
        if (ok) pending.resolve(pending.status);
        else pending.reject(new Error(`${pending.what} got ${pending.status}: ${Buffer.concat(pending.error).toString('utf8').slice(0, 500)}`));
      }
    } catch (error) {
      this.fail(error as Error);
      this.close();
    }
    return true;
  }
}
