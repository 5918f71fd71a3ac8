// Parses CRIU's page-server protocol as bytes arrive, naming for each read the exact place its bytes belong (a command header, or a chunk window at the right offset).
//
// Each process's pages (and each shared-memory segment's) come as one image: OPEN2, then runs of pages
// (ADD_F vaddr, nr_pages, flags, and the pages' bytes when they are present), then the next image, and CLOSE
// at the end. The parser keeps each image's runs (its pagemap, small) and cuts the bytes of its pages at
// fixed virtual-address boundaries: every chunk holds the present pages of one aligned window of addresses,
// in address order. A page that stays at its address lands in the same chunk at the next checkpoint, and a
// mapping that grows shifts nothing around it, so unchanged memory deduplicates. The concatenation of an
// image's chunks is exactly the pages-N.img CRIU would have written.
//
// The reader asks `target()` where the next bytes go and reads at most that many into it, then reports them
// with `received(n)`: page bytes land in their window directly, never in an intermediate buffer. When
// `received` returns a promise (a window was handed to a busy sink), the reader reads nothing more until it
// settles, which holds CRIU back (it waits on the socket) instead of buffering.
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
  type PsHeader,
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

/** The chunk being filled for one image: which window it covers and how many bytes it holds. */
interface OpenWindow {
  window: bigint;
  buffer: Buffer;
  length: number;
}

/** The run of present pages being received: where its next byte goes, and how many are left. */
interface PageRun {
  image: ReceivedImage;
  at: bigint;
  bytesLeft: number;
  /** Bytes left of the part of the run inside the open window. */
  inWindow: number;
}

const WINDOW = BigInt(WINDOW_BYTES);
const PAGE = BigInt(PAGE_BYTES);

export class PageStreamParser {
  /** Every image opened so far, in order. */
  readonly images: ReceivedImage[] = [];
  /** Bytes received so far. */
  receivedBytes = 0;
  /** CLOSE was received, every window handed to the sink and the reply sent: the dump's pages are complete. */
  closed = false;
  private readonly sink: PageSink;
  private readonly reply: (bytes: Buffer) => void;
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFilled = 0;
  private current: ReceivedImage | undefined;
  private currentDst: bigint | undefined;
  private readonly opened = new Set<bigint>();
  private open: OpenWindow | undefined;
  private run: PageRun | undefined;
  /** Where bytes after CLOSE would go: the protocol sends none, and they are ignored. */
  private readonly afterClose = Buffer.alloc(PAGE_BYTES);

  constructor(sink: PageSink, reply: (bytes: Buffer) => void) {
    this.sink = sink;
    this.reply = reply;
  }

  /** Where the next bytes go: read at most its length into it, then call `received`. */
  target(): Buffer {
    if (this.closed) return this.afterClose;
    const run = this.run;
    if (!run) return this.header.subarray(this.headerFilled);
    this.open ??= { window: run.at / WINDOW, buffer: this.sink.take(), length: 0 };
    return this.open.buffer.subarray(this.open.length, this.open.length + run.inWindow);
  }

  /**
   * `bytes` were read into the last target. Returns a promise when nothing more may be read until it settles (a
   * window went to the sink, or CLOSE is being answered); throws a PageServerProtocolError on a stream that is
   * not the protocol (an unknown command, a dst_id naming no image, pages for an image not opened last).
   */
  received(bytes: number): Promise<void> | undefined {
    if (this.closed) return undefined;
    this.receivedBytes += bytes;
    const run = this.run;
    if (!run) {
      this.headerFilled += bytes;
      if (this.headerFilled < HEADER_BYTES) return undefined;
      this.headerFilled = 0;
      return this.command(decodeHeader(this.header));
    }
    const open = this.open!;
    open.length += bytes;
    run.image.pagesBytes += bytes;
    run.inWindow -= bytes;
    run.bytesLeft -= bytes;
    run.at += BigInt(bytes);
    if (run.inWindow > 0) return undefined;
    if (run.bytesLeft === 0) {
      // The window stays open: the next run may continue it.
      this.run = undefined;
      return undefined;
    }
    run.inWindow = windowPart(run.at, run.bytesLeft);
    return this.flush();
  }

  /** Feeds a piece read elsewhere (copied into its targets): for readers that cannot read into a given buffer. */
  async feed(piece: Buffer): Promise<void> {
    let at = 0;
    while (at < piece.length && !this.closed) {
      const target = this.target();
      const n = Math.min(target.length, piece.length - at);
      piece.copy(target, 0, at, at + n);
      at += n;
      const wait = this.received(n);
      if (wait) await wait;
    }
  }

  /** The stream ended: throws, naming where, unless CLOSE was received. */
  ended(): void {
    if (this.closed) return;
    if (this.run) {
      throw new PageServerProtocolError(
        `the page-server stream ended inside ${describe(this.run.image)} at 0x${this.run.at.toString(16)}, ${this.run.bytesLeft} bytes short`,
      );
    }
    if (this.headerFilled > 0) throw new PageServerProtocolError('the page-server stream ended inside a command header');
    throw new PageServerProtocolError(`the page-server stream ended without CLOSE after ${this.receivedBytes} bytes`);
  }

  /** Hands the open window, if it holds anything, to the sink. */
  private flush(): Promise<void> | undefined {
    const open = this.open;
    this.open = undefined;
    // Windows are only ever opened for the image opened last.
    if (!open || !this.current || open.length === 0) return undefined;
    return this.sink.chunk(this.current, open.buffer, open.length);
  }

  private command(header: PsHeader): Promise<void> | undefined {
    switch (header.command) {
      case PsCommand.open2:
      case PsCommand.open: {
        const flushed = this.flush();
        const image = decodeDstId(header.dstId);
        if (this.opened.has(header.dstId)) throw new PageServerProtocolError(`the page server was asked to open ${describe({ image })} a second time`);
        this.opened.add(header.dstId);
        this.current = { image, pagesId: this.images.length + 1, entries: [], pagesBytes: 0 };
        this.currentDst = header.dstId;
        this.images.push(this.current);
        if (header.command === PsCommand.open2) this.reply(OPEN2_REPLY_NO_PARENT);
        return flushed;
      }
      case PsCommand.parent:
        decodeDstId(header.dstId);
        this.reply(PARENT_REPLY_NO_PARENT);
        return undefined;
      case PsCommand.addWithFlags:
      case PsCommand.add:
      case PsCommand.hole:
        return this.pages(header);
      case PsCommand.close:
      case PsCommand.forceClose: {
        const answer = () => {
          this.reply(CLOSE_REPLY_OK);
          this.closed = true;
        };
        const flushed = this.flush();
        if (!flushed) {
          answer();
          return undefined;
        }
        return flushed.then(answer);
      }
      case PsCommand.get:
        throw new PageServerProtocolError('the page server was asked for pages (GET, a lazy restore): it only receives dumps');
      default:
        throw new PageServerProtocolError(
          `the page server was sent command ${header.command} (cmd 0x${(header.command | (header.flags << 16)).toString(16)}), which CRIU 4.2's protocol does not have`,
        );
    }
  }

  private pages(header: PsHeader): Promise<void> | undefined {
    const flags = header.command === PsCommand.addWithFlags ? header.flags : header.command === PsCommand.add ? PageFlag.present : PageFlag.parent;
    decodeDstId(header.dstId);
    const image = this.current;
    if (image === undefined || header.dstId !== this.currentDst) {
      throw new PageServerProtocolError(`pages were sent for dst_id 0x${header.dstId.toString(16)}, which is not the image opened last`);
    }
    if (header.vaddr % PAGE !== 0n || header.nrPages === 0n) {
      throw new PageServerProtocolError(`a run of ${header.nrPages} pages at 0x${header.vaddr.toString(16)} in ${describe(image)} is not whole pages`);
    }
    if (flags & PageFlag.parent) throw new PageServerProtocolError(`${describe(image)} refers to pages in a parent image, which spotsnap never keeps`);
    image.entries.push({ vaddr: header.vaddr, nrPages: header.nrPages, flags });
    if (!(flags & PageFlag.present)) return undefined;
    const bytes = Number(header.nrPages) * PAGE_BYTES;
    this.run = { image, at: header.vaddr, bytesLeft: bytes, inWindow: windowPart(header.vaddr, bytes) };
    // A run in another window than the open one closes it.
    return this.open && this.open.window !== header.vaddr / WINDOW ? this.flush() : undefined;
  }
}

/** Bytes of a run of `bytes` from `at` that lie in `at`'s window. */
function windowPart(at: bigint, bytes: number): number {
  const toEnd = Number((at / WINDOW + 1n) * WINDOW - at);
  return Math.min(toEnd, bytes);
}

function describe(image: Pick<ReceivedImage, 'image'>): string {
  return `${image.image.kind === 'pid' ? 'the pages of PID' : 'shared memory'} ${image.image.id}`;
}
