import { describe, expect, it } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { ChunkUploader, type PackStore } from './chunk-uploader.ts';
import { ChunkWorkers } from './chunk-workers.ts';

describe('ChunkUploader.addOwned', () => {
  it('hands a buffer back only once its bytes are in a pack: a caller that refills it at once corrupts nothing', async () => {
    const packs = new Map<string, Buffer>();
    const store: PackStore = { putPack: async (id, data) => void packs.set(id, Buffer.from(data)) };
    const workers = new ChunkWorkers(2);
    try {
      const uploader = new ChunkUploader(store, new Map(), 2, { workers, compress: false });
      const originals = Array.from({ length: 24 }, (_, i) => seededBytes(`window-${i}`, 1 << 20));
      const refs = [];
      for (const original of originals) {
        const owned = Buffer.allocUnsafeSlow(original.length);
        original.copy(owned);
        // As the page receiver does: the buffer is refilled with other pages as soon as it comes back.
        refs.push((await uploader.addOwned(owned, (back) => Buffer.from(back.buffer).fill(0xee))).ref);
      }
      const resolved = await Promise.all(refs);
      await uploader.drain();
      resolved.forEach((ref, i) => {
        expect(
          packs
            .get(ref.pack)!
            .subarray(ref.offset, ref.offset + ref.bytes)
            .equals(originals[i]!),
        ).toBe(true);
      });
    } finally {
      await workers.close();
    }
  });
});
