// CRIU's pagemap image: written byte for byte as CRIU writes it (magics, size-prefixed protobuf head and entries), read back, and refused when damaged.
import { describe, expect, it } from 'vitest';
import { decodePagemapImage, encodePagemapEntry, encodePagemapImage, type PagemapImage } from './pagemap-image.ts';

/** CRIU's PE_* flags (criu/include/pagemap.h). */
const PE_PARENT = 1 << 0;
const PE_LAZY = 1 << 1;
const PE_PRESENT = 1 << 2;

/** The magic pair: IMG_COMMON_MAGIC 0x54564319 and PAGEMAP_MAGIC 0x56084025, each a u32 little-endian. */
const MAGICS = [0x19, 0x43, 0x56, 0x54, 0x25, 0x40, 0x08, 0x56];

function bytes(...values: number[]): Buffer {
  return Buffer.from(values);
}

describe('encodePagemapEntry', () => {
  it('writes vaddr, compat_nr_pages 0, flags and nr_pages as protobuf varints after a u32 length', () => {
    // 0x7fff_ffff_f000 in 7-bit groups, lowest first: 0x00, 0x60, 0x7f x4, 0x1f.
    const vaddr = [0x80, 0xe0, 0xff, 0xff, 0xff, 0xff, 0x1f];
    const message = [0x08, ...vaddr, 0x10, 0x00, 0x20, PE_PRESENT, 0x28, 0xac, 0x02]; // 300 pages: 0xac 0x02
    expect([...encodePagemapEntry({ vaddr: 0x7fff_ffff_f000n, nrPages: 300n, flags: PE_PRESENT })]).toEqual([message.length, 0, 0, 0, ...message]);
  });

  it('writes a one-byte vaddr and zero counts as single bytes', () => {
    expect([...encodePagemapEntry({ vaddr: 0n, nrPages: 0n, flags: 0 })]).toEqual([8, 0, 0, 0, 0x08, 0x00, 0x10, 0x00, 0x20, 0x00, 0x28, 0x00]);
    expect([...encodePagemapEntry({ vaddr: 0x1000n, nrPages: 1n, flags: PE_LAZY | PE_PRESENT })]).toEqual([
      9, 0, 0, 0, 0x08, 0x80, 0x20, 0x10, 0x00, 0x20, 0x06, 0x28, 0x01,
    ]);
  });

  it('writes a vaddr above 2^53 without losing bits: ten bytes for the top page of the address space', () => {
    const top = encodePagemapEntry({ vaddr: 0xffff_ffff_ffff_f000n, nrPages: 1n, flags: PE_PRESENT });
    expect([...top.subarray(4, 15)]).toEqual([0x08, 0x80, 0xe0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    const above53 = encodePagemapEntry({ vaddr: 2n ** 53n + 0x1000n, nrPages: 1n, flags: 0 });
    expect([...above53.subarray(4, 13)]).toEqual([0x08, 0x80, 0xa0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
  });
});

describe('encodePagemapImage', () => {
  it('starts with the magic pair and the head { pages_id }, then the entries in order', () => {
    const image = encodePagemapImage({ pagesId: 7, entries: [{ vaddr: 0x1000n, nrPages: 2n, flags: PE_PRESENT }] });
    expect([...image]).toEqual([...MAGICS, 2, 0, 0, 0, 0x08, 0x07, 9, 0, 0, 0, 0x08, 0x80, 0x20, 0x10, 0x00, 0x20, 0x04, 0x28, 0x02]);
    expect(image.readUInt32LE(0)).toBe(0x54564319);
    expect(image.readUInt32LE(4)).toBe(0x56084025);
  });

  it('writes a pages_id of more than one varint byte', () => {
    expect([...encodePagemapImage({ pagesId: 300, entries: [] })]).toEqual([...MAGICS, 3, 0, 0, 0, 0x08, 0xac, 0x02]);
  });
});

describe('decodePagemapImage', () => {
  it('reads back what it wrote, 64-bit vaddrs and counts included', () => {
    const image: PagemapImage = {
      pagesId: 12345,
      entries: [
        { vaddr: 0x0040_0000n, nrPages: 1n, flags: PE_PRESENT },
        { vaddr: 0x5555_5555_4000n, nrPages: 33n, flags: PE_PARENT },
        { vaddr: 0x7fff_ffff_f000n, nrPages: 1n, flags: PE_LAZY | PE_PRESENT },
        { vaddr: 2n ** 53n + 0x1000n, nrPages: 2n ** 40n, flags: PE_PRESENT },
        { vaddr: 0xffff_ffff_ffff_f000n, nrPages: 1n, flags: 0 },
        { vaddr: 0x1000n, nrPages: 0n, flags: 0x8000_0000 },
      ],
    };
    expect(decodePagemapImage(encodePagemapImage(image))).toEqual(image);
  });

  it('reads an image of a head only', () => {
    expect(decodePagemapImage(encodePagemapImage({ pagesId: 0, entries: [] }))).toEqual({ pagesId: 0, entries: [] });
  });

  it("reads an older CRIU's entry, with its count in compat_nr_pages and no nr_pages, and flags left out as 0", () => {
    const head = [2, 0, 0, 0, 0x08, 0x01];
    const withFlags = bytes(...MAGICS, ...head, 7, 0, 0, 0, 0x08, 0x80, 0x20, 0x10, 0x05, 0x20, 0x04);
    expect(decodePagemapImage(withFlags)).toEqual({ pagesId: 1, entries: [{ vaddr: 0x1000n, nrPages: 5n, flags: PE_PRESENT }] });
    const noFlags = bytes(...MAGICS, ...head, 5, 0, 0, 0, 0x08, 0x80, 0x20, 0x10, 0x05);
    expect(decodePagemapImage(noFlags)).toEqual({ pagesId: 1, entries: [{ vaddr: 0x1000n, nrPages: 5n, flags: 0 }] });
  });

  it('refuses wrong magic numbers, and a file too short to hold them', () => {
    const good = encodePagemapImage({ pagesId: 1, entries: [{ vaddr: 0x1000n, nrPages: 1n, flags: PE_PRESENT }] });
    const common = Buffer.from(good);
    common.writeUInt32LE(0x54564318, 0);
    expect(() => decodePagemapImage(common)).toThrow('not a CRIU pagemap image: its magic numbers are wrong');
    const pagemap = Buffer.from(good);
    pagemap.writeUInt32LE(0x56084026, 4);
    expect(() => decodePagemapImage(pagemap)).toThrow('not a CRIU pagemap image: its magic numbers are wrong');
    expect(() => decodePagemapImage(good.subarray(0, 7))).toThrow('not a CRIU pagemap image: its magic numbers are wrong');
    expect(() => decodePagemapImage(Buffer.alloc(0))).toThrow('not a CRIU pagemap image: its magic numbers are wrong');
  });

  it('refuses an entry cut short, or its length cut short, saying where', () => {
    const good = encodePagemapImage({ pagesId: 1, entries: [{ vaddr: 0x1000n, nrPages: 1n, flags: PE_PRESENT }] });
    // Magics (8), head (4 + 2), entry (4 + 9) = 27 bytes; the entry starts at byte 14.
    expect(good.length).toBe(27);
    expect(() => decodePagemapImage(good.subarray(0, 26))).toThrow('pagemap image: an entry of 9 bytes at byte 14 runs past the end');
    expect(() => decodePagemapImage(good.subarray(0, 16))).toThrow('pagemap image: a truncated entry length at byte 14');
    expect(() => decodePagemapImage(good.subarray(0, 11))).toThrow('pagemap image: a truncated entry length at byte 8');
    expect(() => decodePagemapImage(good.subarray(0, 12))).toThrow('pagemap image: an entry of 2 bytes at byte 8 runs past the end');
  });

  it('refuses an image without a head, or a head without pages_id', () => {
    expect(() => decodePagemapImage(bytes(...MAGICS))).toThrow('pagemap image: no head entry');
    expect(() => decodePagemapImage(bytes(...MAGICS, 0, 0, 0, 0))).toThrow('pagemap image: the head has no pages_id');
  });

  it('refuses a varint that runs past the end of its message, and a field that is not a varint', () => {
    expect(() => decodePagemapImage(bytes(...MAGICS, 2, 0, 0, 0, 0x08, 0x80))).toThrow('pagemap head: a varint runs past the end of its message');
    const head = [2, 0, 0, 0, 0x08, 0x01];
    expect(() => decodePagemapImage(bytes(...MAGICS, ...head, 3, 0, 0, 0, 0x08, 0x80, 0x80))).toThrow(
      'pagemap entry 0: a varint runs past the end of its message',
    );
    // Field 1 with wire type 2 (length-delimited): 0x0a.
    expect(() => decodePagemapImage(bytes(...MAGICS, ...head, 3, 0, 0, 0, 0x0a, 0x01, 0x00))).toThrow('pagemap entry 0: field 1 has wire type 2, not a varint');
  });

  it('refuses an entry without a vaddr, naming it', () => {
    const head = [2, 0, 0, 0, 0x08, 0x01];
    const first = encodePagemapEntry({ vaddr: 0x1000n, nrPages: 1n, flags: PE_PRESENT });
    expect(() => decodePagemapImage(Buffer.concat([bytes(...MAGICS, ...head), first, bytes(2, 0, 0, 0, 0x28, 0x01)]))).toThrow('pagemap entry 1: no vaddr');
  });
});
