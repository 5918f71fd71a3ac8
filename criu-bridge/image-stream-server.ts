// Serves `criu restore --stream` through the bundled relay (image-stream-relay.c): the agent writes each image CRIU asks for into the pipe CRIU reads it from.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/** The relay's name on the agent's PATH (the bundle's bin/ comes first). */
export const IMAGE_RELAY_BINARY = 'spotsnap-image-relay';

/** The socket CRIU connects to in its images directory for a streamed restore (criu/img-streamer.c). */
export const STREAM_SOCKET_NAME = 'streamer-serve.sock';

/** The longest path a UNIX socket may have (sun_path less its terminating NUL). */
export const MAX_SOCKET_PATH = 107;

/**
 * Writes one image's bytes, in order, through `write` (which resolves once the pipe took them); rejects when
 * it cannot give them all, and then gives no byte more: CRIU reads a short image and fails its restore.
 * `stopped` aborts once the server stops: a feed then starts no more reads and `write` rejects.
 */
export type ImageFeed = (write: (bytes: Buffer) => Promise<void>, stopped: AbortSignal) => Promise<void>;

/**
 * The relay's side failed (it could not run, ended, broke its protocol, or its pipe could not be opened): not
 * the snapshot's fault, so the same snapshot can still be restored from downloaded images.
 */
export class ImageRelayError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageRelayError';
  }
}

/**
 * CRIU's end of an image's pipe closed before the feed was done (CRIU read what it needed, or failed on its own),
 * or the server stopped: not a failure of the stream, and never what a failed restore is blamed on.
 */
export class PipeClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PipeClosedError';
  }
}

/** One image CRIU asked for: whether it was served, and how that ended. */
export interface ImageRequest {
  name: string;
  served: boolean;
  bytes: number;
  /** Settles once every byte is in the pipe, or with why not; undefined until CRIU sent its pipe. */
  done?: Promise<void>;
  /** How `done` settled so far: true once every byte is in the pipe, or why not. */
  ended?: true | string;
  /** When CRIU asked for it, and when its last byte went into the pipe: ms since the server started. */
  askedMs: number;
  endedMs?: number;
}

/** Why a write after the server stopped went nowhere. */
const NO_LONGER_READ = 'the restore no longer reads it';

type RelayProcess = ChildProcessByStdio<Writable, Readable, Readable>;

/**
 * One streamed restore's image server: started before `criu restore --stream`, in the images directory CRIU is
 * given. Every image CRIU asks for is looked up with `feedFor`; one it does not know is answered "no" (CRIU asks
 * for optional images that a dump did not write). Nothing here throws at CRIU: a feed that fails closes its pipe.
 */
export class ImageStreamServer {
  readonly requests: ImageRequest[] = [];
  private readonly relay: RelayProcess;
  private readonly feedFor: (name: string) => ImageFeed | undefined;
  private readonly pipes = new Set<Socket>();
  private pending: { request: ImageRequest; feed: ImageFeed } | undefined;
  private firstFailure: Error | undefined;
  private stderr = '';
  private stopped = false;
  private readonly stopping = new AbortController();
  private readonly exited: Promise<void>;
  private readonly startedAt = performance.now();

  private constructor(relay: RelayProcess, feedFor: (name: string) => ImageFeed | undefined) {
    this.relay = relay;
    this.feedFor = feedFor;
    relay.stderr.setEncoding('utf8').on('data', (text: string) => (this.stderr = (this.stderr + text).slice(-4096)));
    relay.stdin.on('error', () => undefined); // a relay that ended is judged by its exit
    this.exited = new Promise((resolve) => {
      relay.on('error', (error) => {
        this.fail(new ImageRelayError(`the image relay could not run: ${error.message}`));
        resolve();
      });
      relay.on('close', (code, signal) => {
        if (!this.stopped && code !== 0)
          this.fail(new ImageRelayError(`the image relay ended with ${signal ?? `exit ${code}`}: ${this.stderr.trim() || 'no message'}`));
        resolve();
      });
    });
  }

  /**
   * Starts the relay on `imagesDir` and resolves once its socket listens (CRIU may start then); rejects when it
   * cannot (a missing binary, a directory path too long for a socket).
   */
  static async start(relayBinary: string, imagesDir: string, feedFor: (name: string) => ImageFeed | undefined): Promise<ImageStreamServer> {
    const socketPath = `${imagesDir}/${STREAM_SOCKET_NAME}`;
    if (socketPath.length > MAX_SOCKET_PATH) {
      throw new ImageRelayError(
        `${socketPath} is longer than a UNIX socket path may be (${MAX_SOCKET_PATH} bytes): set SPOTSNAP_WORK_DIR to a shorter directory`,
      );
    }
    const relay = spawn(relayBinary, [imagesDir], { stdio: ['pipe', 'pipe', 'pipe'] });
    const server = new ImageStreamServer(relay, feedFor);
    const listening = new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: relay.stdout });
      lines.on('line', (line) => {
        if (line === 'listening') resolve();
        else server.onLine(line);
      });
      void server.exited.then(() => reject(server.firstFailure ?? new ImageRelayError('the image relay ended before it listened')));
    });
    try {
      await listening;
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  /**
   * The first failure of a feed (a chunk that failed its check, a read that failed for good) or of the relay
   * (an ImageRelayError), if any: what a failed restore should be blamed on first. A pipe CRIU closed is none.
   */
  failure(): Error | undefined {
    return this.firstFailure;
  }

  /** Waits for the relay to end (CRIU closed its connection) and every feed to settle; rejects with the first failure. */
  async finished(): Promise<void> {
    await this.exited;
    await Promise.allSettled(this.requests.map((r) => r.done));
    if (this.firstFailure) throw this.firstFailure;
  }

  /** Ends the relay, stops every feed and closes every pipe still open (CRIU then reads the end of what it was given). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    for (const pipe of this.pipes) pipe.destroy();
    if (this.relay.exitCode === null && this.relay.signalCode === null) this.relay.kill('SIGKILL');
    await this.exited;
  }

  private sinceStart(): number {
    return Math.round(performance.now() - this.startedAt);
  }

  private fail(error: Error): void {
    this.firstFailure ??= error;
  }

  private answer(line: string): void {
    this.relay.stdin.write(`${line}\n`);
  }

  private onLine(line: string): void {
    const [verb, argument] = line.split(' ', 2) as [string, string | undefined];
    if (verb === 'open' && argument !== undefined && !this.pending) {
      const feed = this.feedFor(argument);
      const request: ImageRequest = { name: argument, served: feed !== undefined, bytes: 0, askedMs: this.sinceStart() };
      this.requests.push(request);
      if (feed) this.pending = { request, feed };
      this.answer(feed ? 'yes' : 'no');
    } else if (verb === 'pipe' && argument !== undefined && /^\d+$/.test(argument) && this.pending) {
      const { request, feed } = this.pending;
      this.pending = undefined;
      request.done = this.serve(request, feed, `/proc/${this.relay.pid}/fd/${argument}`);
      request.done.then(
        () => {
          request.ended = true;
          request.endedMs = this.sinceStart();
        },
        (error: unknown) => (request.ended = error instanceof Error ? error.message : String(error)),
      );
    } else if (verb !== 'end') {
      this.fail(new ImageRelayError(`the image relay said "${line.slice(0, 200)}", which is not its protocol`));
      void this.stop();
    }
  }

  /** Opens the relay's pipe as one of the agent's own, tells the relay to let go of it, and feeds the image into it. */
  private async serve(request: ImageRequest, feed: ImageFeed, procPath: string): Promise<void> {
    let fd: number;
    try {
      fd = openSync(procPath, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (error) {
      const failed = new ImageRelayError(`could not open the pipe of image ${request.name}: ${error instanceof Error ? error.message : String(error)}`);
      this.fail(failed);
      this.answer('taken'); // the relay closes its copy: CRIU reads an empty image and fails
      throw failed;
    }
    this.answer('taken');
    let pipe: Socket;
    try {
      pipe = new Socket({ fd, readable: false, writable: true });
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.pipes.add(pipe);
    let pipeError: Error | undefined;
    pipe.on('error', (error) => (pipeError ??= error));
    const closed = (why: string) => new PipeClosedError(`criu's pipe of image ${request.name} closed after ${request.bytes} bytes (${why})`);
    const write = (bytes: Buffer): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        if (this.stopped || pipeError || pipe.destroyed) {
          reject(closed(this.stopped ? NO_LONGER_READ : (pipeError?.message ?? 'closed')));
          return;
        }
        pipe.write(bytes, (error) => (error ? reject(closed(error.message)) : resolve()));
      }).then(() => {
        // A pipe destroyed by stop() calls back the write it held as if it went through: it is not counted.
        if (this.stopped) throw closed(NO_LONGER_READ);
        request.bytes += bytes.length;
      });
    try {
      await feed(write, this.stopping.signal);
    } catch (error) {
      // Neither a pipe CRIU closed nor whatever a feed met after the restore stopped reading is the stream's failure.
      if (error instanceof PipeClosedError || this.stopped) throw error;
      const failed = new Error(`image ${request.name} could not be streamed to criu: ${error instanceof Error ? error.message : String(error)}`, {
        cause: error,
      });
      this.fail(failed);
      throw failed;
    } finally {
      // Every byte written is in the pipe already (each write resolved once it was): closing it ends the image.
      pipe.destroy();
      this.pipes.delete(pipe);
    }
  }
}
