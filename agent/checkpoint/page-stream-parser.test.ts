import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeDstId, encodeHeader, PAGE_BYTES, PageFlag, PageServerProtocolError, PsCommand } from '../../criu-bridge/page-server-protocol.ts';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { decodePagemapImage, encodePagemapImage } from './pagemap-image.ts';
import { receivePages } from './page-receiver.ts';
import { WINDOW_BYTES, type PageSink, type ReceivedImage } from './page-stream-parser.ts';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/page-server');
const fixture = (name: string) => gunzipSync(readFileSync(path.join(fixtures, name)));

class Collecting implements PageSink {
  readonly windows = new Map<ReceivedImage, Buffer[]>();
  take(): Buffer {
    return Buffer.alloc(WINDOW_BYTES);
  }
  async chunk(image: ReceivedImage, buffer: Buffer, length: number): Promise<void> {
    this.windows.set(image, [...(this.windows.get(image) ?? []), Buffer.from(buffer.subarray(0, length))]);
  }
  pages(image: ReceivedImage): Buffer {
    return Buffer.concat(this.windows.get(image) ?? []);
  }
}

/** Feeds `bytes` in pieces of the given sizes (cycling), as a socket would. */
function stream(bytes: Buffer, pieceSizes: readonly number[] = [65536]): Readable {
  const pieces: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = pieceSizes[i % pieceSizes.length]!;
    pieces.push(bytes.subarray(at, at + n));
    at += n;
  }
  return Readable.from(pieces);
}

async function receive(bytes: Buffer, pieceSizes?: readonly number[]) {
  const sink = new Collecting();
  const reply = new PassThrough();
  const replies: Buffer[] = [];
  reply.on('data', (b: Buffer) => replies.push(b));
  const images = await receivePages(stream(bytes, pieceSizes), reply, sink);
  return { images, sink, replies: Buffer.concat(replies) };
}

const pid = (id: number) => encodeDstId({ kind: 'pid', id });
const open2 = (dstId: bigint) => encodeHeader({ command: PsCommand.open2, dstId });
const add = (dstId: bigint, vaddr: bigint | number, pages: Buffer) =>
  Buffer.concat([encodeHeader({ command: PsCommand.addWithFlags, flags: PageFlag.present, dstId, vaddr, nrPages: pages.length / PAGE_BYTES }), pages]);
const close = encodeHeader({ command: PsCommand.close });
const pagesOf = (label: string, n: number) => seededBytes(label, n * PAGE_BYTES);

describe('receivePages on a stream CRIU 4.2.1 sent', () => {
  it('rebuilds the pagemap and pages images a local dump of the same process wrote, however the stream is cut into pieces', async () => {
    for (const pieces of [[65536], [1], [31, 33, 4096, 7]]) {
      const { images, sink, replies } = await receive(fixture('stream.bin.gz'), pieces);
      expect(images).toHaveLength(1);
      const [image] = images as [ReceivedImage];
      expect(encodePagemapImage({ pagesId: image.pagesId, entries: image.entries }).equals(fixture('local-pagemap.img.gz'))).toBe(true);
      expect(sink.pages(image).equals(fixture('local-pages.img.gz'))).toBe(true);
      expect(image.pagesBytes).toBe(fixture('local-pages.img.gz').length);
      // One byte (no parent) for OPEN2, an int32 0 for CLOSE.
      expect([...replies]).toEqual([0, 0, 0, 0, 0]);
    }
  });
});

describe('receivePages on synthetic streams', () => {
  it('cuts chunks at 1 MiB address windows: a run across a boundary splits, runs within one window join', async () => {
    const base = 0x7f00_0000_0000n;
    const a = pagesOf('a', 200); // 200 pages from the window's start
    const b = pagesOf('b', 100); // from page 250: 6 pages in the first window, 94 in the next
    const { images, sink } = await receive(Buffer.concat([open2(pid(1)), add(pid(1), base, a), add(pid(1), base + 250n * 4096n, b), close]));
    const [image] = images as [ReceivedImage];
    const windows = sink.windows.get(image)!;
    expect(windows.map((w) => w.length / PAGE_BYTES)).toEqual([206, 94]);
    expect(Buffer.concat(windows).equals(Buffer.concat([a, b]))).toBe(true);
    expect(image.entries).toEqual([
      { vaddr: base, nrPages: 200n, flags: PageFlag.present },
      { vaddr: base + 250n * 4096n, nrPages: 100n, flags: PageFlag.present },
    ]);
    expect(decodePagemapImage(encodePagemapImage({ pagesId: image.pagesId, entries: image.entries })).entries).toEqual(image.entries);
  });

  it('numbers pages files 1, 2, ... in the order images are opened, and names shared memory apart from processes', async () => {
    const shm = encodeDstId({ kind: 'shmem', id: 77 });
    const { images, sink } = await receive(
      Buffer.concat([open2(pid(1)), add(pid(1), 0x1000, pagesOf('p', 3)), open2(shm), add(shm, 0, pagesOf('s', 2)), open2(pid(5)), close]),
    );
    expect(images.map((i) => [i.image, i.pagesId, i.pagesBytes])).toEqual([
      [{ kind: 'pid', id: 1 }, 1, 3 * PAGE_BYTES],
      [{ kind: 'shmem', id: 77 }, 2, 2 * PAGE_BYTES],
      [{ kind: 'pid', id: 5 }, 3, 0],
    ]);
    expect(sink.pages(images[1]!).equals(pagesOf('s', 2))).toBe(true);
  });

  it('answers PARENT with an int32 0, keeps runs that are not present (lazy) without bytes, and accepts the older ADD', async () => {
    const lazy = encodeHeader({ command: PsCommand.addWithFlags, flags: PageFlag.lazy, dstId: pid(1), vaddr: 0x10000, nrPages: 4 });
    const plainAdd = Buffer.concat([encodeHeader({ command: PsCommand.add, dstId: pid(1), vaddr: 0x20000, nrPages: 1 }), pagesOf('x', 1)]);
    const { images, replies } = await receive(
      Buffer.concat([encodeHeader({ command: PsCommand.parent, dstId: pid(1) }), open2(pid(1)), lazy, plainAdd, close]),
    );
    expect([...replies]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(images[0]!.entries.map((e) => e.flags)).toEqual([PageFlag.lazy, PageFlag.present]);
    expect(images[0]!.pagesBytes).toBe(PAGE_BYTES);
  });

  it.each<[string, Buffer, RegExp]>([
    ['a stream cut inside a header', Buffer.concat([open2(pid(1)), close.subarray(0, 20)]), /ended inside a command header/],
    [
      'a stream cut inside pages',
      Buffer.concat([open2(pid(1)), add(pid(1), 0, pagesOf('c', 2)).subarray(0, 32 + 5000)]),
      /ended inside the pages of PID 1 .*3192 bytes short/,
    ],
    ['a stream that ends without CLOSE', Buffer.concat([open2(pid(1)), add(pid(1), 0, pagesOf('c', 1))]), /ended without CLOSE after 4160 bytes/],
    [
      'a dst_id that names no image',
      encodeHeader({ command: PsCommand.open2, dstId: (3n << 8n) | 9n }),
      /dst_id 0x309, which names no pagemap image \(type 9\)/,
    ],
    ['pages for an image never opened', add(pid(1), 0, pagesOf('c', 1)), /not the image opened last/],
    [
      'pages for another image than the one opened',
      Buffer.concat([open2(pid(1)), add(pid(2), 0, pagesOf('c', 1))]),
      /dst_id 0x201, which is not the image opened last/,
    ],
    ['an image opened twice', Buffer.concat([open2(pid(1)), open2(pid(1))]), /open the pages of PID 1 a second time/],
    [
      'a hole in a parent image',
      Buffer.concat([open2(pid(1)), encodeHeader({ command: PsCommand.hole, dstId: pid(1), vaddr: 0, nrPages: 1 })]),
      /parent image/,
    ],
    ['a lazy-restore GET', encodeHeader({ command: PsCommand.get, dstId: pid(1), vaddr: 0, nrPages: 1 }), /GET, a lazy restore/],
    ['an unknown command', encodeHeader({ command: 99 }), /command 99 .*does not have/],
    [
      'a run that is not whole pages',
      Buffer.concat([open2(pid(1)), encodeHeader({ command: PsCommand.addWithFlags, flags: PageFlag.present, dstId: pid(1), vaddr: 0x1001, nrPages: 1 })]),
      /not whole pages/,
    ],
  ])('refuses %s, naming what is wrong', async (_name, bytes, message) => {
    const error = await receive(bytes).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PageServerProtocolError);
    expect((error as Error).message).toMatch(message);
  });

  it('reads no further while the sink is busy, so that CRIU waits instead of the agent buffering', async () => {
    const input = new PassThrough({ highWaterMark: 16 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let chunks = 0;
    const blocking: PageSink = {
      take: () => Buffer.alloc(WINDOW_BYTES),
      chunk: async () => {
        chunks++;
        await gate;
      },
    };
    const receiving = receivePages(input, new PassThrough(), blocking);
    const body = Buffer.concat([
      open2(pid(1)),
      add(pid(1), 0, pagesOf('w', 256)),
      add(pid(1), 1 << 20, pagesOf('v', 256)),
      add(pid(1), 2 << 20, pagesOf('u', 256)),
      close,
    ]);
    let written = 0;
    const writeAll = async () => {
      for (let at = 0; at < body.length; at += 4096) {
        if (!input.write(body.subarray(at, at + 4096))) await new Promise((r) => input.once('drain', r));
        written = at + 4096;
      }
      input.end();
    };
    const writing = writeAll();
    // The first window is handed over once the second run starts; the writer then stalls well before the end.
    await new Promise<void>((resolve) => {
      const check = () => (chunks > 0 ? resolve() : setImmediate(check));
      check();
    });
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(written).toBeLessThan(body.length);
    release();
    await writing;
    expect((await receiving)[0]!.pagesBytes).toBe(3 * WINDOW_BYTES);
  });
});
