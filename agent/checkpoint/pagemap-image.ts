// CRIU's pagemap image (pagemap-N.img), written and read as CRIU does: two magics, then size-prefixed protobuf entries.
//
// The file is the magic pair (IMG_COMMON_MAGIC, PAGEMAP_MAGIC), one PagemapHead { pages_id }, then one
// PagemapEntry { vaddr, compat_nr_pages, flags, nr_pages } per run of pages, each preceded by its length as a
// u32 (criu/protobuf.c pb_write_one, images/pagemap.proto). CRIU 4.2 and later write compat_nr_pages as 0
// (a required field) and the count in nr_pages. The agent writes this file itself from what the page server
// received, byte for byte as `criu dump` would have written it locally.

const IMG_COMMON_MAGIC = 0x54564319;
const PAGEMAP_MAGIC = 0x56084025;

/** One run of pages: `nrPages` pages from `vaddr` (bytes, page-aligned), with PE_* flags. */
export interface PagemapEntry {
  vaddr: bigint;
  nrPages: bigint;
  flags: number;
}

export interface PagemapImage {
  pagesId: number;
  entries: PagemapEntry[];
}

function varint(value: bigint, out: number[]): void {
  let v = value;
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
}

function sizePrefixed(message: number[]): Buffer {
  const out = Buffer.alloc(4 + message.length);
  out.writeUInt32LE(message.length, 0);
  Buffer.from(message).copy(out, 4);
  return out;
}

export function encodePagemapEntry(entry: PagemapEntry): Buffer {
  const message: number[] = [0x08];
  varint(entry.vaddr, message);
  message.push(0x10, 0x00, 0x20);
  varint(BigInt(entry.flags >>> 0), message);
  message.push(0x28);
  varint(entry.nrPages, message);
  return sizePrefixed(message);
}

/** The whole image, as CRIU writes it for the same runs of pages. */
export function encodePagemapImage(image: PagemapImage): Buffer {
  const magics = Buffer.alloc(8);
  magics.writeUInt32LE(IMG_COMMON_MAGIC, 0);
  magics.writeUInt32LE(PAGEMAP_MAGIC, 4);
  const head: number[] = [0x08];
  varint(BigInt(image.pagesId), head);
  return Buffer.concat([magics, sizePrefixed(head), ...image.entries.map(encodePagemapEntry)]);
}

/** Reads one protobuf message's varint fields (the only wire type these messages use). */
function readFields(message: Buffer, what: string): Map<number, bigint> {
  const fields = new Map<number, bigint>();
  for (let at = 0; at < message.length; ) {
    const read = (): bigint => {
      let value = 0n;
      for (let shift = 0n; ; shift += 7n) {
        if (at >= message.length) throw new Error(`${what}: a varint runs past the end of its message`);
        const byte = message[at++]!;
        value |= BigInt(byte & 0x7f) << shift;
        if ((byte & 0x80) === 0) return value;
      }
    };
    const key = Number(read());
    if ((key & 7) !== 0) throw new Error(`${what}: field ${key >> 3} has wire type ${key & 7}, not a varint`);
    fields.set(key >> 3, read());
  }
  return fields;
}

/** Parses a pagemap image; throws on anything CRIU would not have written. */
export function decodePagemapImage(bytes: Buffer): PagemapImage {
  if (bytes.length < 8 || bytes.readUInt32LE(0) !== IMG_COMMON_MAGIC || bytes.readUInt32LE(4) !== PAGEMAP_MAGIC) {
    throw new Error('not a CRIU pagemap image: its magic numbers are wrong');
  }
  const messages: Buffer[] = [];
  for (let at = 8; at < bytes.length; ) {
    if (at + 4 > bytes.length) throw new Error(`pagemap image: a truncated entry length at byte ${at}`);
    const length = bytes.readUInt32LE(at);
    if (at + 4 + length > bytes.length) throw new Error(`pagemap image: an entry of ${length} bytes at byte ${at} runs past the end`);
    messages.push(bytes.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  const [head, ...rest] = messages;
  if (!head) throw new Error('pagemap image: no head entry');
  const pagesId = readFields(head, 'pagemap head').get(1);
  if (pagesId === undefined) throw new Error('pagemap image: the head has no pages_id');
  const entries = rest.map((m, i) => {
    const f = readFields(m, `pagemap entry ${i}`);
    const vaddr = f.get(1);
    if (vaddr === undefined) throw new Error(`pagemap entry ${i}: no vaddr`);
    return { vaddr, nrPages: f.get(5) ?? f.get(2) ?? 0n, flags: Number(f.get(4) ?? 0n) };
  });
  return { pagesId: Number(pagesId), entries };
}
