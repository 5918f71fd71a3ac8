// Encodes chunks on the worker threads, and uploads those S3 does not have yet, several to a pack object, a bounded number of packs in flight.
import { collectYoungGarbage } from '../shared/garbage-collection.ts';
import { CompressionPace } from './compression-pace.ts';
import { crc32Combine } from './crc32-combine.ts';
import type { ChunkRef } from '../store/manifest.ts';
import { newPackId } from '../store/s3-layout.ts';
import type { SnapshotStore } from '../store/snapshot-store.ts';
import { PACK_BYTES } from './buffer-pool.ts';
import type { EncodeResult } from './chunk-workers.ts';
import { sharedChunkWorkers, type ChunkWorkers } from './chunk-workers.ts';
import type { PackSpill } from './pack-spill.ts';

/** What the uploader needs of the job's store: a place to put packs. */
export type PackStore = Pick<SnapshotStore, 'putPack'>;

export interface ChunkTransfer {
  /** Chunks referenced, and their raw bytes. */
  totalChunks: number;
  totalBytes: number;
  /** Chunks actually sent, their raw bytes, and the packs that carried them. */
  uploadedChunks: number;
  uploadedBytes: number;
  uploadedPacks: number;
  /** Bytes of the packs sent: the chunks as stored, compressed where that paid. */
  storedBytes: number;
}

/**
 * Packs in flight for SPOTSNAP_PACKS_IN_FLIGHT=auto: one per GiB of the task's resident memory, from 2 to 16.
 * A small task keeps the agent small (2 in flight and 1 filling, 24 MiB, keep a 2 GiB task's agent under 128
 * MiB and the local S3 emulator busy); a large one, which has more to send before the reclaim, gets more
 * connections to S3 for at most 8 MiB of agent memory per GiB of task.
 */
export function autoPacksInFlight(taskResidentBytes: number): number {
  return Math.min(16, Math.max(2, Math.floor(taskResidentBytes / 1024 ** 3)));
}

/** A copy in an ArrayBuffer of its own (Buffer.from may share one with other small buffers), so that it can be transferred. */
function ownedCopy(data: Buffer): Buffer {
  const copy = Buffer.allocUnsafeSlow(data.length);
  data.copy(copy);
  return copy;
}

/** Where each chunk of the job's committed snapshots is, by digest (`algorithm:hex`). */
export type KnownChunks = Map<string, ChunkRef>;

interface OpenPack {
  id: string;
  /**
   * The chunks as stored, in order. They are sent as they are, never joined: a raw chunk's part is its own
   * buffer (a page window), which goes back to its owner only once the pack is stored or dropped.
   */
  parts: Buffer[];
  bytes: number;
  crc32: number;
  refs: ChunkRef[];
  /** Hands the parts' buffers back to their owners: called once, when the pack is stored or dropped. */
  releases: Array<() => void>;
}

/**
 * A part as a pack keeps it until it is stored: itself when it fills most of the memory it is a view of (a
 * full window, a zstd output that filled its buffer); else a copy of its own size, so that a pack of small
 * chunks (the ends of mappings) does not hold a window of a megabyte for each of them.
 */
function keptPart(stored: Buffer): Buffer {
  if (stored.length * 4 >= stored.buffer.byteLength * 3) return stored;
  const copy = Buffer.allocUnsafe(stored.length);
  stored.copy(copy);
  return copy;
}

export interface UploaderOptions {
  /** The threads that hash and compress (default: the process's shared pool, one per usable core). */
  workers?: ChunkWorkers;
  /** zstd where it pays (default true). */
  compress?: boolean;
  /**
   * Keep a chunk raw when the workers, not the uploads, are what holds the checkpoint back (default true);
   * false compresses every chunk that would shrink enough, whatever it costs in time.
   */
  adaptiveCompression?: boolean;
  /** Chunks being encoded at once (default: two per worker): each holds its buffer. */
  encodingAhead?: number;
  /**
   * The rates that judge compression (default: a new one). An attempt passes its own to every checkpoint, so
   * that a checkpoint starts from what the last one measured instead of compressing until it has measured again.
   */
  pace?: CompressionPace;
}

/**
 * Takes chunks in order; each is hashed (and compressed, unless S3 has it) on a worker thread while the next
 * ones come, and those S3 does not have are appended to the open pack; a full pack is uploaded while the next
 * fills. A pack holds up to 8 MiB: a sixth of the requests of one object per chunk, which is what an S3
 * endpoint charges and limits by. A pack is a list of its chunks' buffers, sent without being joined, and a
 * chunk's buffer is handed back (`recycle`) once its pack is stored. At most `concurrency` packs are in flight,
 * so memory stays near (concurrency + 1) x 8 MiB plus the chunks being encoded (at worst a third more: a
 * chunk that fills three quarters of its window is sent from it, and the window is held whole); `add` waits
 * for room.
 * Only chunks of committed snapshots count as known (the checkpoint adds its own after its commit): packs of a
 * checkpoint that failed are never referenced later, so `spotsnap prune` may delete them at any time.
 * With a spill (a background checkpoint's, while the task is frozen), a full pack that finds no slot is written
 * to the work dir instead of waiting, and sent from there as slots free.
 */
export class ChunkUploader {
  private readonly store: PackStore;
  private readonly known: KnownChunks;
  private readonly concurrency: number;
  private readonly workers: ChunkWorkers;
  private readonly compress: boolean;
  private readonly adaptiveCompression: boolean;
  private readonly encodingAhead: number;
  /** Chunks this checkpoint packed (open, in flight or stored), by digest. */
  private readonly packed = new Map<string, ChunkRef>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly encoding = new Set<Promise<unknown>>();
  /** Packing is one at a time, in the order encodings complete. */
  private packing: Promise<void> = Promise.resolve();
  private open: OpenPack | undefined;
  private readonly abort = new AbortController();
  private failure: unknown;
  /** Where packs that found no slot wait, and whether new ones still may (only while the task is frozen). */
  private spill: PackSpill | undefined;
  private spilling = false;
  /** Sealed packs waiting for an upload slot now: S3 is the limit while there are any. */
  private packsWaitingForSlot = 0;
  readonly transfer: ChunkTransfer = { totalChunks: 0, totalBytes: 0, uploadedChunks: 0, uploadedBytes: 0, uploadedPacks: 0, storedBytes: 0 };
  /** Bytes of uploads completed so far, for progress. */
  sentBytes = 0;
  /** Chunks offered to zstd, and chunks kept raw because the workers were the limit, for the log. */
  readonly compressionChoices = { compressed: 0, raw: 0 };
  /** How fast the workers compress and the packs go, as measured so far. */
  readonly pace: CompressionPace;

  constructor(store: PackStore, known: KnownChunks, concurrency: number, options: UploaderOptions = {}) {
    this.store = store;
    this.known = known;
    this.concurrency = concurrency;
    this.workers = options.workers ?? sharedChunkWorkers();
    this.compress = options.compress ?? true;
    this.adaptiveCompression = options.adaptiveCompression ?? true;
    this.encodingAhead = options.encodingAhead ?? 2 * this.workers.size;
    this.pace = options.pace ?? new CompressionPace();
    this.workers.setKnown(known.keys());
  }

  /**
   * Queues a chunk whose buffer the uploader may take (`raw` owns its ArrayBuffer and nothing else uses it
   * until `recycle` hands it back: once the chunk is known, copied or compressed, or else once the pack that
   * carries it is stored or dropped). Resolves once there is room for it, with the promise of its reference
   * (in an object: a promise cannot resolve to a promise). The reference may resolve before `recycle` runs.
   */
  async addOwned(raw: Buffer, recycle: (buffer: Buffer) => void = () => undefined): Promise<{ ref: Promise<ChunkRef> }> {
    let waitedForWorkers = false;
    while (this.encoding.size >= this.encodingAhead) {
      waitedForWorkers = true;
      await Promise.race(this.encoding);
      this.throwIfFailed();
    }
    this.throwIfFailed();
    // Compression pays only when it is not what holds the checkpoint back: a chunk that had to wait for the
    // workers while no sealed pack was waiting for an upload slot goes raw (the cores are the limit); while
    // packs wait for S3, or the workers keep up, chunks are compressed.
    const cpuBound = this.adaptiveCompression && waitedForWorkers && this.packsWaitingForSlot === 0;
    // And only where the workers compress at least as fast as S3 takes raw bytes (compression-pace.ts).
    const tooSlow = this.adaptiveCompression && !this.pace.pays(this.workers.size, this.concurrency);
    const compress = this.compress && !cpuBound && !tooSlow;
    if (this.compress) this.compressionChoices[compress ? 'compressed' : 'raw']++;
    const ref = this.workers.encode(raw, compress, true).then(async (result) => {
      if (result.zstdMs !== undefined) this.pace.noteCompressed(result.bytes, result.zstdMs);
      let handedBack = false;
      const handBack = (): void => {
        if (handedBack) return;
        handedBack = true;
        recycle(result.raw);
      };
      try {
        return await this.enqueuePacking(result, handBack);
      } catch (error) {
        // Never packed: nothing else holds the buffer.
        handBack();
        throw error;
      }
    });
    const tracked = ref.then(
      () => undefined,
      (error: unknown) => this.fail(error),
    );
    this.encoding.add(tracked);
    void tracked.finally(() => this.encoding.delete(tracked));
    ref.catch(() => undefined); // the failure is the uploader's, reported by drain
    return { ref };
  }

  /**
   * Hashes the chunk and packs it if S3 does not have it; rejects once any upload has failed. The chunk's bytes
   * are copied before this returns its promise: the caller may reuse its buffer then.
   */
  async add(data: Buffer): Promise<ChunkRef> {
    return await (await this.addOwned(ownedCopy(data))).ref;
  }

  /**
   * A chunk consumer (see ContentChunker) that queues each chunk (copied) and sets its reference in `refs`, at
   * the chunk's place, once it is encoded; `drain` waits for them all.
   */
  addingTo(refs: ChunkRef[]): (chunk: Buffer) => Promise<void> {
    return async (chunk) => {
      const copy = ownedCopy(chunk);
      const index = refs.length;
      refs.push(undefined as unknown as ChunkRef);
      const { ref } = await this.addOwned(copy);
      void ref.then((r) => (refs[index] = r)).catch(() => undefined);
    };
  }

  /** From now on, packs that find no slot wait in `spill` (a background checkpoint while its task is frozen); `undefined` stops that. */
  spillTo(spill: PackSpill | undefined): void {
    if (spill) this.spill = spill;
    this.spilling = spill !== undefined;
  }

  /** Waits for every chunk to be encoded and packed, sends the open pack and waits for every upload; rejects with the first failure. */
  async drain(): Promise<ChunkTransfer> {
    while (this.encoding.size > 0) await Promise.all(this.encoding);
    this.throwIfFailed();
    await this.packing;
    this.throwIfFailed();
    await this.seal();
    await this.sendSpilled();
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    this.throwIfFailed();
    return this.transfer;
  }

  /** Stops everything in flight (after a failure elsewhere) and waits for it to settle. */
  async cancel(reason: unknown): Promise<void> {
    this.fail(reason);
    while (this.encoding.size > 0) await Promise.allSettled(this.encoding);
    await this.packing.catch(() => undefined);
    if (this.open) this.releasePack(this.open);
    this.open = undefined;
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  private enqueuePacking(result: EncodeResult, handBack: () => void): Promise<ChunkRef> {
    const packed = this.packing.then(() => this.packOne(result, handBack));
    this.packing = packed.then(
      () => undefined,
      (error: unknown) => this.fail(error),
    );
    return packed;
  }

  /** Packs one encoded chunk; `handBack` returns its raw buffer, now or (when the pack keeps it) once the pack is stored or dropped. */
  private async packOne(result: EncodeResult, handBack: () => void): Promise<ChunkRef> {
    this.throwIfFailed();
    const { digest, bytes, stored } = result;
    this.transfer.totalChunks++;
    this.transfer.totalBytes += bytes;
    const existing = this.known.get(digest) ?? this.packed.get(digest);
    if (existing && existing.bytes === bytes) {
      handBack();
      return { ...existing };
    }
    this.transfer.uploadedChunks++;
    this.transfer.uploadedBytes += bytes;
    const encoding = result.encoding === 'zstd' ? { encoding: 'zstd' as const, storedBytes: stored.length } : {};
    if (stored.length > PACK_BYTES) {
      // Larger than a pack (never from spotsnap's own chunkers): it travels alone.
      await this.seal();
      const ref: ChunkRef = { digest, bytes, pack: newPackId(), offset: 0, ...encoding };
      this.packed.set(digest, ref);
      // A copy of its own, so that the caller has its buffer back at once.
      const alone = Buffer.from(stored);
      handBack();
      await this.send({ id: ref.pack, parts: [alone], bytes: alone.length, crc32: result.crc32, refs: [ref], releases: [] });
      return { ...ref };
    }
    if (this.open && this.open.bytes + stored.length > PACK_BYTES) await this.seal();
    this.open ??= { id: newPackId(), parts: [], bytes: 0, crc32: 0, refs: [], releases: [] };
    const pack = this.open;
    const ref: ChunkRef = { digest, bytes, pack: pack.id, offset: pack.bytes, ...encoding };
    const part = keptPart(stored);
    pack.parts.push(part);
    // The raw buffer is held only while the pack holds it as its part (a raw chunk kept as it is).
    if (part === result.raw) pack.releases.push(handBack);
    else handBack();
    pack.bytes += stored.length;
    pack.crc32 = crc32Combine(pack.crc32, result.crc32, stored.length);
    pack.refs.push(ref);
    this.packed.set(digest, ref);
    return { ...ref };
  }

  /** Uploads the open pack, if it holds anything, once a slot is free. */
  private async seal(): Promise<void> {
    const pack = this.open;
    this.open = undefined;
    if (!pack) return;
    if (pack.bytes > 0) await this.send(pack);
    else this.releasePack(pack);
  }

  /** Uploads a sealed pack once a slot is free (or spills it, while the task is frozen); its parts are released once it is stored or dropped. */
  private async send(pack: OpenPack): Promise<void> {
    this.transfer.uploadedPacks++;
    this.transfer.storedBytes += pack.bytes;
    try {
      if (this.spilling && this.inFlight.size >= this.concurrency && this.spill?.hasRoomFor(pack.bytes)) {
        const spilled = await this.spill.put(pack.id, pack.parts, pack.crc32).then(
          () => true,
          () => {
            // The work dir refused it (full, read-only): the pack waits for a slot as without a spill, and the
            // task stays frozen a little longer; nothing more is spilled.
            this.spillTo(undefined);
            return false;
          },
        );
        if (spilled) {
          this.releasePack(pack);
          this.pumpSpilled();
          return;
        }
      }
      await this.slot();
    } catch (error) {
      this.releasePack(pack);
      throw error;
    }
    this.upload(pack.id, pack.parts, pack.bytes, pack.crc32, () => this.releasePack(pack));
  }

  /** Hands a pack's parts back to their owners (once): it was stored, spilled or dropped. */
  private releasePack(pack: OpenPack): void {
    const releases = pack.releases.splice(0);
    // A new list, not the one the store was handed, which it may still hold.
    pack.parts = [];
    for (const release of releases) release();
    // The compressed chunks it carried, which the workers allocated, are dead now.
    if (pack.refs.some((ref) => ref.encoding === 'zstd')) collectYoungGarbage();
  }

  /** Waits until fewer than `concurrency` packs are in flight. */
  private async slot(): Promise<void> {
    this.packsWaitingForSlot++;
    try {
      while (this.inFlight.size >= this.concurrency) {
        await Promise.race(this.inFlight);
        this.throwIfFailed();
      }
    } finally {
      this.packsWaitingForSlot--;
    }
    this.throwIfFailed();
  }

  private upload(id: string, parts: readonly Buffer[], bytes: number, checksum: number, done: () => void | Promise<void>): void {
    const started = performance.now();
    const upload = this.store
      .putPack(id, parts, checksum, this.abort.signal)
      .then(
        () => {
          this.sentBytes += bytes;
          this.pace.notePut(bytes, performance.now() - started);
        },
        (error: unknown) => this.fail(error),
      )
      .then(() => done())
      .finally(() => {
        this.inFlight.delete(upload);
        this.pumpSpilled();
      });
    this.inFlight.add(upload);
  }

  /** Starts uploads of spilled packs while slots are free. */
  private pumpSpilled(): void {
    const spill = this.spill;
    if (!spill || this.failure !== undefined) return;
    while (this.inFlight.size < this.concurrency && spill.waiting > 0) {
      const next = spill.takeNext();
      if (!next) break;
      const reading = next.read().then(
        (parts) => {
          this.inFlight.delete(reading);
          this.upload(next.id, parts, next.bytes, next.crc32, () => next.release());
        },
        (error: unknown) => {
          this.inFlight.delete(reading);
          void next.release();
          this.fail(error);
        },
      );
      this.inFlight.add(reading);
    }
  }

  /** Sends every spilled pack, a slot at a time. */
  private async sendSpilled(): Promise<void> {
    const spill = this.spill;
    if (!spill) return;
    this.spilling = false;
    while (spill.waiting > 0 || this.inFlight.size > 0) {
      this.pumpSpilled();
      if (this.inFlight.size === 0) break;
      await Promise.race(this.inFlight);
      this.throwIfFailed();
    }
    this.throwIfFailed();
  }

  private fail(error: unknown): void {
    if (this.failure === undefined) {
      this.failure = error ?? new Error('a chunk upload failed');
      this.abort.abort(this.failure);
    }
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
