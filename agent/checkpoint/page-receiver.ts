// Serves CRIU's page-server protocol on one socket: the pages of `criu dump --page-server` arrive here and leave as address-aligned chunks.
//
// Each process's pages (and each shared-memory segment's) come as one image: OPEN2, then runs of pages
// (ADD_F vaddr, nr_pages, flags, and the pages' bytes when they are present), then the next image, and CLOSE
// at the end. The receiver keeps each image's runs (its pagemap, small) and cuts the bytes of its pages at
// fixed virtual-address boundaries: every chunk holds the present pages of one aligned window of addresses,
// in address order. A page that stays at its address lands in the same chunk at the next checkpoint, and a
// mapping that grows shifts nothing around it, so unchanged memory deduplicates. The concatenation of an
// image's chunks is exactly the pages-N.img CRIU would have written.
//
// Nothing of the size of the task's memory is held or written: each chunk goes to `sink` as soon as its window
// is complete, and the socket is not read while the sink is busy, which holds CRIU back (it waits on the socket)
// instead of buffering.
import type { Readable, Writable } from 'node:stream';
import {
  CLOSE_REPLY_OK,
  decodeDstId,
  decodeHeader,
  HEADER_BYTES,
  OPEN2_REPLY_NO_PARENT,
  PAGE_BYTES,
  PageFlag,
  PageServerProtocolError,
  PARENT_REPLY_NO_PARENT,
  PsCommand,
  type PageImageId,
} from '../../criu-bridge/page-server-protocol.ts';
import type { PagemapEntry } from './pagemap-image.ts';

/** Chunks hold one 1 MiB-aligned window of addresses each (256 pages): small enough to dedup, few enough to list. */
export const WINDOW_BYTES = 1 << 20;

/** One image received: its runs of pages, and the id its pages file gets (CRIU's own numbering, from 1 in opening order). */
export interface ReceivedImage {
  image: PageImageId;
  pagesId: number;
  entries: PagemapEntry[];
  /** Bytes of present pages received: the size of its pages file. */
  pagesBytes: number;
}

/** Where chunks go. `take` gives a buffer of WINDOW_BYTES to fill; `chunk` receives it back, filled to `length`. */
export interface PageSink {
  take(): Buffer;
  chunk(image: ReceivedImage, buffer: Buffer, length: number): Promise<void>;
}

/** A byte stream read on demand: nothing is read from the socket until it is asked for. */
class SocketReader {
  private readonly pieces: AsyncIterator<Buffer>;
  private held: Buffer = Buffer.alloc(0);
  private ended = false;
  /** Bytes received so far. */
  received = 0;

  constructor(socket: Readable) {
    this.pieces = socket[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  /** Whether the stream ended before any more bytes. */
  async atEnd(): Promise<boolean> {
    if (this.held.length > 0) return false;
    await this.fill();
    return this.held.length === 0;
  }

  /** Exactly `length` bytes (a copy when they span pieces); throws `what` if the stream ends first. */
  async exactly(length: number, what: string): Promise<Buffer> {
    while (this.held.length < length) {
      const before = this.held.length;
      await this.fill(true);
      if (this.held.length === before) throw new PageServerProtocolError(`the page-server stream ended ${what}`);
    }
    const out = this.held.subarray(0, length);
    this.held = this.held.subarray(length);
    return out;
  }

  /** Copies exactly `length` bytes into `target` at `offset`. */
  async into(target: Buffer, offset: number, length: number, what: string): Promise<void> {
    let done = 0;
    while (done < length) {
      if (this.held.length === 0) {
        await this.fill();
        if (this.held.length === 0) throw new PageServerProtocolError(`the page-server stream ended ${what}, ${length - done} bytes short`);
      }
      const n = Math.min(this.held.length, length - done);
      this.held.copy(target, offset + done, 0, n);
      this.held = this.held.subarray(n);
      done += n;
    }
  }

  /** Reads the next piece; with `append`, keeps what is held in front of it. */
  private async fill(append = false): Promise<void> {
    if (this.ended) return;
    const next = await this.pieces.next();
    if (next.done) {
      this.ended = true;
      return;
    }
    const piece = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array);
    this.received += piece.length;
    this.held = append && this.held.length > 0 ? Buffer.concat([this.held, piece]) : piece;
  }
}

/** The chunk being filled for one image: which window it covers and how many bytes it holds. */
interface OpenWindow {
  window: bigint;
  buffer: Buffer;
  length: number;
}

/**
 * Serves one `criu dump` on `socket` (read from it, answer on `reply`). Resolves with every image received
 * once CRIU has sent CLOSE and every chunk has been handed to the sink; rejects, naming what was wrong, on
 * any stream that is not the protocol (an unknown command, a dst_id naming no image, pages for an image that
 * was not opened, a stream cut short). A rejected stream must not be committed: the dump fails with it.
 */
export async function receivePages(socket: Readable, reply: Writable, sink: PageSink): Promise<ReceivedImage[]> {
  const reader = new SocketReader(socket);
  const images: ReceivedImage[] = [];
  let current: ReceivedImage | undefined;
  let currentDst: bigint | undefined;
  let open: OpenWindow | undefined;
  const opened = new Set<bigint>();

  const flush = async (): Promise<void> => {
    if (open && current && open.length > 0) await sink.chunk(current, open.buffer, open.length);
    open = undefined;
  };

  const receiveRun = async (vaddr: bigint, nrPages: bigint): Promise<void> => {
    const image = current!;
    const window = BigInt(WINDOW_BYTES);
    let at = vaddr;
    let left = nrPages;
    while (left > 0n) {
      const index = at / window;
      const windowEnd = (index + 1n) * window;
      const pages = (windowEnd - at) / BigInt(PAGE_BYTES) < left ? (windowEnd - at) / BigInt(PAGE_BYTES) : left;
      if (open && open.window !== index) await flush();
      open ??= { window: index, buffer: sink.take(), length: 0 };
      const bytes = Number(pages) * PAGE_BYTES;
      await reader.into(open.buffer, open.length, bytes, `inside ${describe(image)} at 0x${at.toString(16)}`);
      open.length += bytes;
      image.pagesBytes += bytes;
      at += pages * BigInt(PAGE_BYTES);
      left -= pages;
    }
  };

  for (;;) {
    if (await reader.atEnd()) throw new PageServerProtocolError(`the page-server stream ended without CLOSE after ${reader.received} bytes`);
    const header = decodeHeader(await reader.exactly(HEADER_BYTES, 'inside a command header'));
    switch (header.command) {
      case PsCommand.open2:
      case PsCommand.open: {
        await flush();
        const image = decodeDstId(header.dstId);
        if (opened.has(header.dstId)) throw new PageServerProtocolError(`the page server was asked to open ${describe({ image })} a second time`);
        opened.add(header.dstId);
        current = { image, pagesId: images.length + 1, entries: [], pagesBytes: 0 };
        currentDst = header.dstId;
        images.push(current);
        if (header.command === PsCommand.open2) reply.write(OPEN2_REPLY_NO_PARENT);
        break;
      }
      case PsCommand.parent:
        decodeDstId(header.dstId);
        reply.write(PARENT_REPLY_NO_PARENT);
        break;
      case PsCommand.addWithFlags:
      case PsCommand.add:
      case PsCommand.hole: {
        const flags = header.command === PsCommand.addWithFlags ? header.flags : header.command === PsCommand.add ? PageFlag.present : PageFlag.parent;
        decodeDstId(header.dstId);
        if (current === undefined || header.dstId !== currentDst) {
          throw new PageServerProtocolError(`pages were sent for dst_id 0x${header.dstId.toString(16)}, which is not the image opened last`);
        }
        if (header.vaddr % BigInt(PAGE_BYTES) !== 0n || header.nrPages === 0n) {
          throw new PageServerProtocolError(`a run of ${header.nrPages} pages at 0x${header.vaddr.toString(16)} in ${describe(current)} is not whole pages`);
        }
        if (flags & PageFlag.parent) throw new PageServerProtocolError(`${describe(current)} refers to pages in a parent image, which spotsnap never keeps`);
        current.entries.push({ vaddr: header.vaddr, nrPages: header.nrPages, flags });
        if (flags & PageFlag.present) await receiveRun(header.vaddr, header.nrPages);
        break;
      }
      case PsCommand.close:
      case PsCommand.forceClose:
        await flush();
        reply.write(CLOSE_REPLY_OK);
        return images;
      case PsCommand.get:
        throw new PageServerProtocolError('the page server was asked for pages (GET, a lazy restore): it only receives dumps');
      default:
        throw new PageServerProtocolError(
          `the page server was sent command ${header.command} (cmd 0x${(header.command | (header.flags << 16)).toString(16)}), which CRIU 4.2's protocol does not have`,
        );
    }
  }
}

function describe(image: Pick<ReceivedImage, 'image'>): string {
  return `${image.image.kind === 'pid' ? 'the pages of PID' : 'shared memory'} ${image.image.id}`;
}
