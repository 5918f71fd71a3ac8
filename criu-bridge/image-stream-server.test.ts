// The image stream server against a stand-in relay that asks for images as CRIU would and reads each from a FIFO the server opens through /proc.
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ImageRelayError, ImageStreamServer, MAX_SOCKET_PATH, PipeClosedError, type ImageFeed } from './image-stream-server.ts';

/**
 * The stand-in relay: `listening`, then for each name of FAKE_RELAY_ASK an `open` and, after a yes, a FIFO read end
 * offered as `pipe FD`; what each pipe delivered is written to FAKE_RELAY_OUT as JSON. FAKE_RELAY_SAY is said
 * after the requests instead of `end`; FAKE_RELAY_FAIL makes it exit 9 at once; FAKE_RELAY_READ_ONLY=N closes each
 * pipe once N bytes came (as CRIU does with an image it read what it needed of, or when it fails on its own).
 */
const FAKE_RELAY = String.raw`
import { execFileSync } from 'node:child_process';
import { openSync, constants, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import path from 'node:path';
if (process.env.FAKE_RELAY_FAIL) { process.stderr.write('cannot bind: Address already in use\n'); process.exit(9); }
const dir = process.argv[2];
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const next = async () => (await lines.next()).value;
const got = {};
console.log('listening');
for (const name of process.env.FAKE_RELAY_ASK.split(',')) {
  console.log('open ' + name);
  if ((await next()) !== 'yes') continue;
  const fifo = path.join(dir, name + '.fifo');
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  console.log('pipe ' + fd);
  if ((await next()) !== 'taken') process.exit(4);
  const chunks = [];
  const only = Number(process.env.FAKE_RELAY_READ_ONLY ?? Infinity);
  await new Promise((resolve) => {
    const pipe = new Socket({ fd, readable: true, writable: false });
    let read = 0;
    pipe.on('data', (d) => {
      chunks.push(d);
      read += d.length;
      if (read >= only) { pipe.destroy(); resolve(); }
    }).on('end', resolve).on('close', resolve);
  });
  got[name] = Buffer.concat(chunks).toString('base64');
}
writeFileSync(process.env.FAKE_RELAY_OUT, JSON.stringify(got));
console.log(process.env.FAKE_RELAY_SAY ?? 'end');
process.exit(0);
`;

let relay: string;
let dir: string;

beforeAll(async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-relay-'));
  await writeFile(path.join(root, 'fake-relay.mjs'), FAKE_RELAY);
  relay = path.join(root, 'fake-relay');
  await writeFile(relay, `#!/bin/sh\nexec "${process.execPath}" "${path.join(root, 'fake-relay.mjs')}" "$@"\n`);
  await chmod(relay, 0o755);
});

afterEach(() => {
  for (const name of ['FAKE_RELAY_ASK', 'FAKE_RELAY_OUT', 'FAKE_RELAY_SAY', 'FAKE_RELAY_FAIL', 'FAKE_RELAY_READ_ONLY']) delete process.env[name];
});

/** Runs the server against the stand-in asking for `ask`; returns what each pipe delivered. */
async function serve(
  ask: string[],
  feeds: Record<string, ImageFeed>,
): Promise<{ server: ImageStreamServer; delivered: () => Promise<Record<string, Buffer>> }> {
  dir = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-stream-'));
  const out = path.join(dir, 'delivered.json');
  process.env.FAKE_RELAY_ASK = ask.join(',');
  process.env.FAKE_RELAY_OUT = out;
  const server = await ImageStreamServer.start(relay, dir, (name) => feeds[name]);
  return {
    server,
    delivered: async () => {
      const json = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
      return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    },
  };
}

const bytesFeed =
  (...pieces: Buffer[]): ImageFeed =>
  async (write) => {
    for (const piece of pieces) await write(piece);
  };

describe('ImageStreamServer', () => {
  it('answers each request, writes every byte of a known image into its pipe and closes it, and says no to one it does not know', async () => {
    const big = Buffer.alloc(3 << 20, 0x5a); // larger than a pipe holds: the writes wait for the reader
    const { server, delivered } = await serve(['inventory.img', 'memfd.img', 'pages-1.img'], {
      'inventory.img': bytesFeed(Buffer.from('inv')),
      'pages-1.img': bytesFeed(big, Buffer.from('tail')),
    });
    await server.finished();
    const got = await delivered();
    expect(Object.keys(got).sort()).toEqual(['inventory.img', 'pages-1.img']);
    expect(got['inventory.img']!.toString()).toBe('inv');
    expect(got['pages-1.img']!.equals(Buffer.concat([big, Buffer.from('tail')]))).toBe(true);
    expect(server.requests.map(({ name, served, bytes, ended }) => ({ name, served, bytes, ended }))).toEqual([
      { name: 'inventory.img', served: true, bytes: 3, ended: true },
      { name: 'memfd.img', served: false, bytes: 0, ended: undefined },
      { name: 'pages-1.img', served: true, bytes: big.length + 4, ended: true },
    ]);
    expect(server.failure()).toBeUndefined();
  });

  it('closes the pipe of a feed that fails after the bytes it gave, and blames the restore on it', async () => {
    const failing: ImageFeed = async (write) => {
      await write(Buffer.from('first chunk'));
      throw new Error('pack p1 bytes 0+10: digest sha256:aa does not match');
    };
    const { server, delivered } = await serve(['pages-1.img', 'pages-2.img'], { 'pages-1.img': failing, 'pages-2.img': bytesFeed(Buffer.from('ok')) });
    await expect(server.finished()).rejects.toThrow('image pages-1.img could not be streamed to criu: pack p1 bytes 0+10: digest sha256:aa does not match');
    const got = await delivered();
    // CRIU reads a short image (and fails): only what was given before the failure.
    expect(got['pages-1.img']!.toString()).toBe('first chunk');
    expect(got['pages-2.img']!.toString()).toBe('ok');
    expect(server.failure()?.message).toContain('pages-1.img');
  });

  it("does not count a pipe CRIU closed before the image's end as a failure, and says how far it got", async () => {
    process.env.FAKE_RELAY_READ_ONLY = String(1 << 20);
    const pieces = Array.from({ length: 8 }, (_, i) => Buffer.alloc(1 << 20, i));
    let feedError: unknown;
    const feed: ImageFeed = async (write, stopped) => {
      try {
        await bytesFeed(...pieces)(write, stopped);
      } catch (error) {
        feedError = error;
        throw error;
      }
    };
    const { server, delivered } = await serve(['pages-1.img'], { 'pages-1.img': feed });
    await server.finished();
    expect((await delivered())['pages-1.img']!.length).toBeGreaterThanOrEqual(1 << 20);
    expect(feedError).toBeInstanceOf(PipeClosedError);
    const [request] = server.requests;
    expect(request!.ended).toMatch(/^criu's pipe of image pages-1\.img closed after \d+ bytes \(.+\)$/);
    expect(request!.bytes).toBeLessThan(8 << 20);
    // Nothing to blame a failed restore on: CRIU's own error comes first then.
    expect(server.failure()).toBeUndefined();
  });

  it('counts a line outside the protocol as a failure of the relay and stops it', async () => {
    process.env.FAKE_RELAY_SAY = 'hello there';
    const { server } = await serve(['inventory.img'], { 'inventory.img': bytesFeed(Buffer.from('i')) });
    await expect(server.finished()).rejects.toThrow('the image relay said "hello there", which is not its protocol');
    expect(server.failure()).toBeInstanceOf(ImageRelayError);
  });

  it('rejects its start with what the relay said when it ends before it listens', async () => {
    process.env.FAKE_RELAY_FAIL = '1';
    process.env.FAKE_RELAY_ASK = '';
    const where = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-stream-'));
    await expect(ImageStreamServer.start(relay, where, () => undefined)).rejects.toThrow(
      'the image relay ended with exit 9: cannot bind: Address already in use',
    );
  });

  it('rejects a missing relay binary, naming it', async () => {
    await expect(ImageStreamServer.start('/nonexistent/spotsnap-image-relay', os.tmpdir(), () => undefined)).rejects.toThrow(
      'the image relay could not run: spawn /nonexistent/spotsnap-image-relay ENOENT',
    );
  });

  it('refuses an images directory whose socket path would be too long, naming it and what to do', async () => {
    const long = `/var/lib/${'d'.repeat(MAX_SOCKET_PATH)}`;
    await expect(ImageStreamServer.start(relay, long, () => undefined)).rejects.toThrow(
      `${long}/streamer-serve.sock is longer than a UNIX socket path may be (107 bytes): set SPOTSNAP_WORK_DIR to a shorter directory`,
    );
  });
});
