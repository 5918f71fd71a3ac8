// Uploads the content-addressed chunks S3 does not have yet, several to a pack object, a bounded number of packs in flight.
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { ChunkRef } from '../store/manifest.ts';
import { newPackId } from '../store/s3-layout.ts';
import type { SnapshotStore } from '../store/snapshot-store.ts';
import { PACK_BYTES, transferBuffers } from './buffer-pool.ts';

/** What the uploader needs of the job's store: a place to put packs. */
export type PackStore = Pick<SnapshotStore, 'putPack'>;

export interface ChunkTransfer {
  /** Chunks referenced, and their bytes. */
  totalChunks: number;
  totalBytes: number;
  /** Chunks actually sent, their bytes, and the packs that carried them. */
  uploadedChunks: number;
  uploadedBytes: number;
  uploadedPacks: number;
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

/** Where each chunk of the job's committed snapshots is, by SHA-256. */
export type KnownChunks = Map<string, ChunkRef>;

interface OpenPack {
  id: string;
  buffer: Buffer;
  bytes: number;
  crc32: number;
  refs: ChunkRef[];
}

/**
 * Takes chunks in order, hashes each, and appends those not in `known` to the open pack; a full pack is
 * uploaded while the next one fills. A pack holds up to 8 MiB: a sixth of the requests of one object per chunk
 * (1.5 MiB on average), which is what an S3 endpoint charges and limits by. At most `concurrency` packs are in
 * flight, so memory stays near (concurrency + 1) x 8 MiB, in the agent's reused transfer buffers; `add` waits
 * for a free slot.
 * Only chunks of committed snapshots count as known (the checkpoint adds its own after its commit): packs of a
 * checkpoint that failed are never referenced later, so `spotsnap prune` may delete them at any time.
 */
export class ChunkUploader {
  private readonly store: PackStore;
  private readonly known: KnownChunks;
  private readonly concurrency: number;
  /** Chunks this checkpoint packed (open, in flight or stored), by SHA-256. */
  private readonly packed = new Map<string, ChunkRef>();
  private readonly inFlight = new Set<Promise<void>>();
  private open: OpenPack | undefined;
  private readonly abort = new AbortController();
  private failure: unknown;
  readonly transfer: ChunkTransfer = { totalChunks: 0, totalBytes: 0, uploadedChunks: 0, uploadedBytes: 0, uploadedPacks: 0 };
  /** Bytes of uploads completed so far, for progress. */
  sentBytes = 0;

  constructor(store: PackStore, known: KnownChunks, concurrency: number) {
    this.store = store;
    this.known = known;
    this.concurrency = concurrency;
  }

  /**
   * Hashes the chunk and packs it if S3 does not have it; rejects once any upload has failed. The chunk's bytes
   * are copied before this settles: the caller may reuse its buffer then.
   */
  async add(data: Buffer): Promise<ChunkRef> {
    this.throwIfFailed();
    const sha256 = createHash('sha256').update(data).digest('hex');
    this.transfer.totalChunks++;
    this.transfer.totalBytes += data.length;
    const stored = this.known.get(sha256) ?? this.packed.get(sha256);
    if (stored && stored.bytes === data.length) return { ...stored };
    this.transfer.uploadedChunks++;
    this.transfer.uploadedBytes += data.length;
    if (data.length > PACK_BYTES) {
      // Larger than a pack (never from spotsnap's own chunker): it travels alone.
      await this.seal();
      const ref = { sha256, bytes: data.length, pack: newPackId(), offset: 0 };
      this.packed.set(sha256, ref);
      await this.send({ id: ref.pack, buffer: Buffer.from(data), bytes: data.length, crc32: crc32(data), refs: [ref] }, false);
      return { ...ref };
    }
    if (this.open && this.open.bytes + data.length > PACK_BYTES) await this.seal();
    this.open ??= { id: newPackId(), buffer: transferBuffers.take(), bytes: 0, crc32: 0, refs: [] };
    const pack = this.open;
    const ref = { sha256, bytes: data.length, pack: pack.id, offset: pack.bytes };
    data.copy(pack.buffer, pack.bytes);
    pack.bytes += data.length;
    pack.crc32 = crc32(data, pack.crc32);
    pack.refs.push(ref);
    this.packed.set(sha256, ref);
    return { ...ref };
  }

  /** A chunk consumer (see ContentChunker) that adds each chunk and appends its reference to `refs`. */
  addingTo(refs: ChunkRef[]): (chunk: Buffer) => Promise<void> {
    return async (chunk) => void refs.push(await this.add(chunk));
  }

  /** Sends the open pack and waits for every upload; rejects with the first failure. */
  async drain(): Promise<ChunkTransfer> {
    await this.seal();
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    this.throwIfFailed();
    return this.transfer;
  }

  /** Stops everything in flight (after a failure elsewhere) and waits for it to settle. */
  async cancel(reason: unknown): Promise<void> {
    if (this.failure === undefined) this.failure = reason;
    this.abort.abort(reason);
    if (this.open) transferBuffers.release(this.open.buffer);
    this.open = undefined;
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  /** Uploads the open pack, if it holds anything, once a slot is free. */
  private async seal(): Promise<void> {
    const pack = this.open;
    this.open = undefined;
    if (!pack) return;
    if (pack.bytes > 0) await this.send(pack, true);
    else transferBuffers.release(pack.buffer);
  }

  private async send(pack: OpenPack, reuseBuffer: boolean): Promise<void> {
    while (this.inFlight.size >= this.concurrency) {
      await Promise.race(this.inFlight);
      this.throwIfFailed();
    }
    this.throwIfFailed();
    this.transfer.uploadedPacks++;
    const upload = this.store
      .putPack(pack.id, pack.buffer.subarray(0, pack.bytes), pack.crc32, this.abort.signal)
      .then(
        () => {
          this.sentBytes += pack.bytes;
        },
        (error: unknown) => {
          if (this.failure === undefined) {
            this.failure = error;
            this.abort.abort(error);
          }
        },
      )
      .finally(() => {
        if (reuseBuffer) transferBuffers.release(pack.buffer);
        this.inFlight.delete(upload);
      });
    this.inFlight.add(upload);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
