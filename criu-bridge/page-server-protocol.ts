// CRIU's page-server protocol (criu/page-xfer.c, CRIU 4.2 and later): the 32-byte command header, its fields, and the replies.
//
// `criu dump --page-server` sends each process's pages as a sequence of commands on one socket:
//   OPEN2(dst)                 -> the server answers one byte: 1 if it holds a parent image for dst, else 0
//   ADD_F(dst, vaddr, n, flags) followed by n pages of data when flags has PE_PRESENT
//   PARENT(dst)                -> the server answers an int32: 1 if it holds a parent image, else 0
//   CLOSE or FORCE_CLOSE       -> the server answers an int32 status (0) once every page is stored
// ADD (pages, no flags) and HOLE (pages in the parent) are older forms of ADD_F. GET is for lazy restores
// and is never sent by a dump. Every field is in the host's byte order (little-endian on x86-64 and arm64).
//
// CRIU 4.2 widened nr_pages to 64 bits, so the header grew from 24 bytes (CRIU 4.1 and older) to 32: the two
// cannot be told apart on the wire, which is why the agent only speaks to the CRIU versions it knows.

export const PAGE_BYTES = 4096;

/** The header's size: u32 cmd, 4 bytes of padding, u64 nr_pages, u64 vaddr, u64 dst_id. */
export const HEADER_BYTES = 32;

export const PsCommand = {
  add: 1,
  hole: 2,
  open: 3,
  open2: 4,
  parent: 5,
  addWithFlags: 6,
  get: 7,
  close: 0x1023,
  forceClose: 0x1024,
} as const;
export type PsCommandCode = (typeof PsCommand)[keyof typeof PsCommand];

/** Pagemap entry flags (criu/include/pagemap.h). */
export const PageFlag = { parent: 1 << 0, lazy: 1 << 1, present: 1 << 2 } as const;

/** The image kinds a dst_id names (its low 8 bits), as CRIU 3.3 and later encode them. */
export type PageImageKind = 'pid' | 'shmem';

/** One decoded command header. */
export interface PsHeader {
  /** The command (low 16 bits of cmd). */
  command: number;
  /** The flags carried in cmd's high 16 bits (ADD_F only). */
  flags: number;
  nrPages: bigint;
  vaddr: bigint;
  dstId: bigint;
}

/** Which pagemap image a dst_id names: the kind and the id (a process's virtual PID, or a shared-memory id). */
export interface PageImageId {
  kind: PageImageKind;
  id: number;
}

/** The oldest CRIU whose page server speaks this protocol (the 32-byte header). */
export const OLDEST_CRIU_WITH_THIS_PROTOCOL = 40200;

/** A stream that does not follow the protocol: the dump is refused rather than stored wrong. */
export class PageServerProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PageServerProtocolError';
  }
}

export function decodeHeader(bytes: Buffer, at = 0): PsHeader {
  const cmd = bytes.readUInt32LE(at);
  return {
    command: cmd & 0xffff,
    flags: cmd >>> 16,
    nrPages: bytes.readBigUInt64LE(at + 8),
    vaddr: bytes.readBigUInt64LE(at + 16),
    dstId: bytes.readBigUInt64LE(at + 24),
  };
}

/** Encodes a header as CRIU sends it (for tests, and for any client of the agent's server). */
export function encodeHeader(h: { command: number; flags?: number; nrPages?: bigint | number; vaddr?: bigint | number; dstId?: bigint }): Buffer {
  const out = Buffer.alloc(HEADER_BYTES);
  out.writeUInt32LE((((h.flags ?? 0) << 16) | h.command) >>> 0, 0);
  out.writeBigUInt64LE(BigInt(h.nrPages ?? 0), 8);
  out.writeBigUInt64LE(BigInt(h.vaddr ?? 0), 16);
  out.writeBigUInt64LE(h.dstId ?? 0n, 24);
  return out;
}

/** dst_id for an image, as CRIU encodes it (encode_pm). */
export function encodeDstId(image: PageImageId): bigint {
  return (BigInt(image.id) << 8n) | (image.kind === 'pid' ? 1n : 2n);
}

/**
 * Which image a dst_id names. The legacy type numbers that CRIU before 3.3 sent are not accepted: this agent
 * only runs CRIU 4.2 or later, and a number it does not know means a stream it does not understand.
 */
export function decodeDstId(dstId: bigint): PageImageId {
  const type = Number(dstId & 0xffn);
  const id = dstId >> 8n;
  if ((type !== 1 && type !== 2) || id > 0xffffffffn) {
    throw new PageServerProtocolError(`the page server was sent dst_id 0x${dstId.toString(16)}, which names no pagemap image (type ${type})`);
  }
  return { kind: type === 1 ? 'pid' : 'shmem', id: Number(id) };
}

/** The pagemap image's file name for an image id, as CRIU names it (criu/image-desc.c). */
export function pagemapFileName(image: PageImageId): string {
  return image.kind === 'pid' ? `pagemap-${image.id}.img` : `pagemap-shmem-${image.id}.img`;
}

/** The pages image's file name for a pages id. */
export function pagesFileName(pagesId: number): string {
  return `pages-${pagesId}.img`;
}

/** The reply to OPEN2: one byte, whether a parent image exists (spotsnap never keeps one: incremental dumps dedup by chunk). */
export const OPEN2_REPLY_NO_PARENT = Buffer.from([0]);
/** The reply to PARENT: an int32, 0 (no parent). */
export const PARENT_REPLY_NO_PARENT = Buffer.alloc(4);
/** The reply to CLOSE and FORCE_CLOSE: an int32 status, 0 once everything is stored. */
export const CLOSE_REPLY_OK = Buffer.alloc(4);
