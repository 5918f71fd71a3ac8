import { describe, expect, it, vi } from 'vitest';
import { seededBytes } from '../../test/support/seeded-bytes.ts';
import { ChunkUploader, type PackStore } from './chunk-uploader.ts';
import { ChunkWorkers } from './chunk-workers.ts';

describe('ChunkUploader.addOwned', () => {
  it('hands a buffer back only once its pack is stored: a caller that refills it at once corrupts nothing', async () => {
    const packs = new Map<string, Buffer>();
    const store: PackStore = { putPack: async (id, parts) => void packs.set(id, Buffer.concat(parts)) };
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

  it('sends a full chunk from its own buffer and holds it until the pack is stored; copies a small one and hands it back at once', async () => {
    let storePack: (() => void) | undefined;
    const sent: Array<readonly Buffer[]> = [];
    const store: PackStore = {
      putPack: (_id, parts) => {
        sent.push(parts);
        return new Promise<void>((resolve) => (storePack = resolve));
      },
    };
    const workers = new ChunkWorkers(1);
    try {
      const uploader = new ChunkUploader(store, new Map(), 1, { workers, compress: false });
      const back: string[] = [];
      let fullBack: Buffer | undefined;
      const window = (name: string, bytes: number): Buffer => {
        const memory = Buffer.allocUnsafeSlow(1 << 20);
        seededBytes(name, bytes).copy(memory);
        return memory.subarray(0, bytes);
      };
      const full = window('full', 1 << 20);
      const small = window('small', 4096);
      const fullCopy = Buffer.from(full);
      const refs = [
        (
          await uploader.addOwned(full, (buffer) => {
            back.push('full');
            fullBack = buffer;
          })
        ).ref,
        (await uploader.addOwned(small, () => back.push('small'))).ref,
      ];
      await Promise.all(refs);
      expect(back).toEqual(['small']);
      const draining = uploader.drain();
      await vi.waitFor(() => expect(sent).toHaveLength(1), { timeout: 5000 });
      // The full chunk is sent from its own window (a megabyte), the small one from a copy of its 4 KiB.
      expect(sent[0]![0]!.buffer.byteLength).toBe(1 << 20);
      expect(sent[0]![1]!.buffer.byteLength).toBeLessThan(1 << 20);
      expect(back).toEqual(['small']);
      storePack!();
      await draining;
      expect(back).toEqual(['small', 'full']);
      // What came back is the memory that was sent.
      expect(fullBack!.buffer === sent[0]![0]!.buffer).toBe(true);
      expect(Buffer.concat(sent[0]!).equals(Buffer.concat([fullCopy, seededBytes('small', 4096)]))).toBe(true);
    } finally {
      await workers.close();
    }
  });
});
