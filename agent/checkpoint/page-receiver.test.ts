import { describe, expect, it } from 'vitest';
import { encodeDstId, encodeHeader, PAGE_BYTES, PageFlag, PageServerProtocolError, PsCommand } from '../../criu-bridge/page-server-protocol.ts';
import { pageServerSocketPair } from '../../criu-bridge/page-server-socket.ts';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { DirectPageReceiver } from './page-receiver.ts';
import { WINDOW_BYTES, type PageSink, type ReceivedImage } from './page-stream-parser.ts';
import os from 'node:os';

const pid = encodeDstId({ kind: 'pid', id: 1 });
const open2 = encodeHeader({ command: PsCommand.open2, dstId: pid });
const add = (vaddr: number, pages: Buffer) =>
  Buffer.concat([encodeHeader({ command: PsCommand.addWithFlags, flags: PageFlag.present, dstId: pid, vaddr, nrPages: pages.length / PAGE_BYTES }), pages]);
const close = encodeHeader({ command: PsCommand.close });

/** Keeps copies of the windows it is handed; `gate` holds each hand-over back until it settles. */
class Recording implements PageSink {
  readonly windows: Buffer[] = [];
  gate: Promise<void> = Promise.resolve();
  take(): Buffer {
    return Buffer.alloc(WINDOW_BYTES);
  }
  async chunk(_image: ReceivedImage, buffer: Buffer, length: number): Promise<void> {
    this.windows.push(Buffer.from(buffer.subarray(0, length)));
    await this.gate;
  }
}

/** A receiver on the agent's end of a real socket pair, CRIU's end written by the test. */
async function connected(sink: PageSink) {
  const receiver = new DirectPageReceiver(sink);
  const { agent, criu } = await pageServerSocketPair(os.tmpdir(), receiver.onread);
  const replies: Buffer[] = [];
  // CRIU's end comes paused (this process must never read what is meant for CRIU): here the test reads it.
  criu.on('data', (b: Buffer) => replies.push(b));
  criu.resume();
  return { served: receiver.serve(agent), agent, criu, replies };
}

describe('DirectPageReceiver on a socket pair', () => {
  it('lands the pages in the windows it was given, split at 1 MiB boundaries, and answers OPEN2 and CLOSE', async () => {
    const sink = new Recording();
    const { served, criu, replies } = await connected(sink);
    const base = 0x7f00_0000_0000;
    const first = seededBytes('first', 300 * PAGE_BYTES); // 256 pages in one window, 44 in the next
    const second = seededBytes('second', 3 * PAGE_BYTES);
    criu.write(Buffer.concat([open2, add(base, first), add(base + (1 << 20) + 100 * PAGE_BYTES, second), close]));
    const [image] = await served;
    expect(image!.pagesBytes).toBe(303 * PAGE_BYTES);
    expect(sink.windows.map((w) => w.length / PAGE_BYTES)).toEqual([256, 47]);
    expect(Buffer.concat(sink.windows).equals(Buffer.concat([first, second]))).toBe(true);
    await new Promise<void>((resolve) => (replies.length >= 2 ? resolve() : criu.once('data', () => setImmediate(resolve))));
    expect([...Buffer.concat(replies)]).toEqual([0, 0, 0, 0, 0]);
    criu.destroy();
  });

  it('stops reading while the sink is busy, and reads on once it has room', async () => {
    const sink = new Recording();
    let open!: () => void;
    sink.gate = new Promise<void>((resolve) => (open = resolve));
    const { served, agent, criu } = await connected(sink);
    const body = Buffer.concat([open2, add(0, seededBytes('a', 256 * PAGE_BYTES)), add(1 << 20, seededBytes('b', 256 * PAGE_BYTES)), close]);
    criu.write(body);
    // The first window is handed over when the second run starts; then nothing more is read.
    await new Promise<void>((resolve) => {
      const check = () => (sink.windows.length > 0 ? resolve() : setImmediate(check));
      check();
    });
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(agent.bytesRead).toBeLessThan(body.length);
    expect(sink.windows).toHaveLength(1);
    open();
    const [image] = await served;
    expect(image!.pagesBytes).toBe(512 * PAGE_BYTES);
    criu.destroy();
  });

  it('refuses a stream that is not the protocol, and closes the socket so that CRIU stops', async () => {
    const { served, criu } = await connected(new Recording());
    const ended = new Promise<void>((resolve) => criu.once('close', () => resolve()));
    criu.write(encodeHeader({ command: 99 }));
    await expect(served).rejects.toThrow(PageServerProtocolError);
    await ended;
  });

  it('refuses a stream cut inside pages, saying how much was missing', async () => {
    const { served, criu } = await connected(new Recording());
    criu.end(Buffer.concat([open2, add(0, seededBytes('c', 2 * PAGE_BYTES)).subarray(0, 32 + 5000)]));
    await expect(served).rejects.toThrow(/ended inside the pages of PID 1 .*3192 bytes short/);
  });
});
