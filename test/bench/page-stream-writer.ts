// Plays CRIU's side of a page-server dump on descriptor 0: one image of distinct pseudo-random pages, as fast as the socket takes them.
import net from 'node:net';
import { encodeDstId, encodeHeader, PAGE_BYTES, PageFlag, PsCommand } from '../../criu-bridge/page-server-protocol.ts';

const totalMiB = Number(process.argv[2] ?? 1024);
const runPages = 256;
const socket = new net.Socket({ fd: 0, readable: true, writable: true });
const dstId = encodeDstId({ kind: 'pid', id: 1 });
// 64 MiB of seeded xorshift bytes; each page also carries its number, so no two windows are alike.
const pool = Buffer.allocUnsafe(64 << 20);
let state = 0x9e3779b9;
for (let i = 0; i < pool.length; i += 4) {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  pool.writeUInt32LE(state >>> 0, i);
}

async function write(buffer: Buffer): Promise<void> {
  if (!socket.write(buffer)) await new Promise((resolve) => socket.once('drain', resolve));
}

await write(encodeHeader({ command: PsCommand.open2, dstId }));
let page = 0;
for (let mib = 0; mib < totalMiB; mib++) {
  const at = (mib % 64) << 20;
  const run = Buffer.from(pool.subarray(at, at + runPages * PAGE_BYTES));
  for (let p = 0; p < runPages; p++) run.writeUInt32LE(page++, p * PAGE_BYTES);
  await write(encodeHeader({ command: PsCommand.addWithFlags, flags: PageFlag.present, dstId, vaddr: 0x10000000 + mib * (1 << 20), nrPages: runPages }));
  await write(run);
}
await write(encodeHeader({ command: PsCommand.close }));
socket.on('data', () => undefined);
socket.on('end', () => process.exit(0));
setTimeout(() => process.exit(0), 5000).unref();
