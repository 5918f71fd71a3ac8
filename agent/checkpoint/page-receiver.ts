// Serves CRIU's page-server protocol on a socket: the page-stream parser fed from it, its replies sent back, and the images received once CRIU sent CLOSE.
//
// Two readers feed the parser. `DirectPageReceiver` is for the agent's own end of the page-server socket pair
// (made with `onread`, see criu-bridge/page-server-socket.ts): the kernel copies each read straight into the
// window or header it belongs to, so no buffer is allocated and nothing is copied again, whatever the task's
// size. `receivePages` takes any readable stream and copies its pieces into place (recordings, tests, a TCP
// page server).
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { PageStreamParser, type PageSink, type ReceivedImage } from './page-stream-parser.ts';

export { WINDOW_BYTES, type PageSink, type ReceivedImage } from './page-stream-parser.ts';

/**
 * Serves one `criu dump` from `input` (answering on `reply`). Resolves with every image received once CRIU has
 * sent CLOSE and every chunk has been handed to the sink; rejects, naming what was wrong, on any stream that is
 * not the protocol (an unknown command, a dst_id naming no image, pages for an image that was not opened, a
 * stream cut short). A rejected stream must not be committed: the dump fails with it. `input` is neither
 * ended nor destroyed here: the reply to CLOSE may still be on its way.
 */
export async function receivePages(input: Readable, reply: Writable, sink: PageSink): Promise<ReceivedImage[]> {
  const parser = new PageStreamParser(sink, (bytes) => reply.write(bytes));
  const pieces = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | Uint8Array>;
  while (!parser.closed) {
    const next = await pieces.next();
    if (next.done) break;
    const piece = next.value;
    await parser.feed(Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength));
  }
  parser.ended();
  return parser.images;
}

/** The `onread` option of `net.Socket`: reads into the buffer `buffer()` names, reported to `callback` (false pauses reading). */
export interface DirectReads {
  buffer: () => Buffer;
  callback: (bytes: number, buffer: Buffer) => boolean;
}

/**
 * A page server whose socket reads straight into the parser's targets. Give `onread` to the socket when it is
 * made, then `serve` it. Reading pauses whenever the sink is busy, and resumes when it has room.
 */
export class DirectPageReceiver {
  readonly onread: DirectReads;
  private readonly parser: PageStreamParser;
  private socket: Socket | undefined;
  private lastTarget: Buffer | undefined;
  private settle: { resolve: (images: ReceivedImage[]) => void; reject: (error: Error) => void } | undefined;
  private outcome: { images: ReceivedImage[] } | { error: Error } | undefined;

  constructor(sink: PageSink) {
    this.parser = new PageStreamParser(sink, (bytes) => this.socket?.write(bytes));
    this.onread = {
      buffer: () => {
        this.lastTarget = this.parser.target();
        return this.lastTarget;
      },
      callback: (bytes, buffer) => this.onBytes(bytes, buffer),
    };
  }

  /** Serves `socket` (made with this receiver's `onread`) until CLOSE; rejects as `receivePages` does. */
  serve(socket: Socket): Promise<ReceivedImage[]> {
    this.socket = socket;
    socket.on('end', () => this.finishAtEnd());
    socket.on('close', () => this.finishAtEnd());
    socket.on('error', (error) => this.finish({ error }));
    return new Promise<ReceivedImage[]>((resolve, reject) => {
      this.settle = { resolve, reject };
      if (this.outcome) this.deliver();
    });
  }

  private onBytes(bytes: number, buffer: Buffer): boolean {
    if (this.outcome) return false;
    try {
      // The buffer named last, unless the socket read elsewhere (it never should): then the bytes are copied.
      const wait = buffer === this.lastTarget ? this.parser.received(bytes) : this.parser.feed(Buffer.from(buffer.subarray(0, bytes)));
      if (this.parser.closed) this.finish({ images: this.parser.images });
      if (!wait) return true;
      wait.then(
        () => {
          if (this.parser.closed) this.finish({ images: this.parser.images });
          else if (!this.outcome) this.socket?.resume();
        },
        (error: unknown) => this.finish({ error: asError(error) }),
      );
      return false;
    } catch (error) {
      this.finish({ error: asError(error) });
      return false;
    }
  }

  private finishAtEnd(): void {
    if (this.outcome) return;
    try {
      this.parser.ended();
      this.finish({ images: this.parser.images });
    } catch (error) {
      this.finish({ error: asError(error) });
    }
  }

  private finish(outcome: { images: ReceivedImage[] } | { error: Error }): void {
    if (this.outcome) return;
    this.outcome = outcome;
    // CRIU may be blocked writing pages: a closed socket makes its dump fail instead of waiting for ever.
    if ('error' in outcome) this.socket?.destroy();
    this.deliver();
  }

  private deliver(): void {
    const { settle, outcome } = this;
    if (!settle || !outcome) return;
    if ('error' in outcome) settle.reject(outcome.error);
    else settle.resolve(outcome.images);
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
