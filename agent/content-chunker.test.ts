import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ContentChunker, DEFAULT_CHUNKER } from './content-chunker.ts';

function chunkAll(data: Buffer, pieceBytes = 64 * 1024): Buffer[] {
  const chunker = new ContentChunker();
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += pieceBytes) chunks.push(...chunker.push(data.subarray(i, i + pieceBytes)));
  chunks.push(...chunker.flush());
  return chunks;
}

const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('ContentChunker', () => {
  const data = randomBytes(40 * 1024 * 1024);

  it('reassembles to the input, with sizes between min and max', () => {
    const chunks = chunkAll(data);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk.length).toBeGreaterThanOrEqual(DEFAULT_CHUNKER.minBytes);
      expect(chunk.length).toBeLessThanOrEqual(DEFAULT_CHUNKER.maxBytes);
      expect(chunk.length % 512).toBe(0);
    }
    expect(chunks.length).toBeGreaterThan(5);
  });

  it('cuts in the same places however the input is split into pushes', () => {
    expect(chunkAll(data, 1000).map(digest)).toEqual(chunkAll(data, 3 * 1024 * 1024 + 512).map(digest));
  });

  it('re-syncs after data is inserted: only the chunks around the change differ', () => {
    const before = chunkAll(data).map(digest);
    const inserted = Buffer.concat([data.subarray(0, 10 << 20), randomBytes(8192), data.subarray(10 << 20)]);
    const after = chunkAll(inserted).map(digest);
    const shared = after.filter((h) => before.includes(h)).length;
    expect(after.length - shared).toBeLessThanOrEqual(2);
  });

  it('cuts zero-filled data at the minimum or maximum size and reuses the chunk', () => {
    const zeros = chunkAll(Buffer.alloc(20 << 20));
    expect(new Set(zeros.slice(0, -1).map(digest)).size).toBe(1);
  });

  it('keeps a trailing partial block', () => {
    const odd = randomBytes(1234567);
    expect(Buffer.concat(chunkAll(odd, 777)).equals(odd)).toBe(true);
  });
});
