// Copies a task's output pipe to the container's stdout or stderr, and can stop reading at once for a checkpoint.
import { readSync } from 'node:fs';
import net from 'node:net';
import type { Writable } from 'node:stream';

/** The most output held back while a restored tree proves it runs. */
const MAX_HELD_BYTES = 1024 * 1024;

/**
 * Reads one pipe and writes what it reads to `destination`. `pause()` stops reading from the kernel
 * immediately (the `onread` mode of net.Socket), so nothing is read while CRIU saves the pipe.
 * CRIU does not put saved bytes back into a pipe it re-attaches with --inherit-fd, so after a committed
 * checkpoint `drain()` prints what the frozen task left in the pipe: nothing is lost or printed twice.
 */
export class OutputRelay {
  private readonly socket: net.Socket;
  private readonly fd: number;
  private readonly write: (chunk: Buffer) => void;
  private readonly out: (chunk: Buffer) => void;
  readonly ended: Promise<void>;

  /** Output held back while a restored tree proves it runs (`hold()`), and how many bytes of it. */
  private held: Buffer[] | undefined;
  private heldBytes = 0;

  constructor(readFd: number, destination: Writable | ((chunk: Buffer) => void)) {
    const out = typeof destination === 'function' ? destination : (chunk: Buffer) => void destination.write(chunk);
    const write = (chunk: Buffer): void => {
      if (!this.held) {
        out(chunk);
        return;
      }
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      // A task that prints this much is evidently running: what it printed goes out rather than pile up here.
      if (this.heldBytes > MAX_HELD_BYTES) this.release();
    };
    this.out = out;
    this.fd = readFd;
    this.write = write;
    this.socket = new net.Socket({
      fd: readFd,
      readable: true,
      writable: false,
      onread: {
        buffer: Buffer.alloc(64 * 1024),
        callback: (bytes: number, buffer: Uint8Array) => {
          write(Buffer.from(buffer.subarray(0, bytes)));
          return true;
        },
      },
    });
    this.ended = new Promise((resolve) => {
      this.socket.once('end', resolve);
      this.socket.once('close', () => resolve());
      this.socket.once('error', () => resolve());
    });
  }

  /** Stops reading; what is in the pipe stays there. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Copies what is in the pipe now (its writers are frozen or gone) and stays paused until `resume()`. */
  drain(): void {
    this.socket.pause();
    const buffer = Buffer.alloc(64 * 1024);
    for (;;) {
      let bytes: number;
      try {
        bytes = readSync(this.fd, buffer);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw error;
      }
      if (bytes === 0) break;
      this.write(Buffer.from(buffer.subarray(0, bytes)));
    }
  }

  /** Goes on reading, but keeps what it reads (up to MAX_HELD_BYTES) until `release()` or `discard()`. */
  hold(): void {
    this.held ??= [];
  }

  /** Writes what was held back, and passes output through again. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.heldBytes = 0;
    for (const chunk of held) this.out(chunk);
  }

  /** Drops what was held back (a restored tree that was given up), and passes output through again. */
  discard(): void {
    this.held = undefined;
    this.heldBytes = 0;
  }

  /** Stops for good and closes this end of the pipe. */
  close(): void {
    this.socket.destroy();
  }
}
