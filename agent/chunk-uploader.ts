// Uploads content-addressed chunks with a bounded number in flight, skipping chunks S3 already has.
import { createHash } from 'node:crypto';
import type { ChunkRef } from './manifest.ts';
import type { SnapshotStore } from './snapshot-store.ts';

export interface ChunkTransfer {
  /** Chunks referenced, and their bytes. */
  totalChunks: number;
  totalBytes: number;
  /** Chunks actually sent, and their bytes. */
  uploadedChunks: number;
  uploadedBytes: number;
}

/**
 * Takes chunks in order, hashes each, and uploads those not in `known` (the chunks of the job's committed
 * snapshots, and those this process already sent). At most `concurrency` uploads run at once, so memory
 * stays near concurrency x the largest chunk; `add` waits for a free slot.
 */
export class ChunkUploader {
  private readonly store: SnapshotStore;
  private readonly known: Set<string>;
  private readonly concurrency: number;
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private failure: unknown;
  readonly transfer: ChunkTransfer = { totalChunks: 0, totalBytes: 0, uploadedChunks: 0, uploadedBytes: 0 };
  /** Bytes of uploads completed so far, for progress. */
  sentBytes = 0;

  constructor(store: SnapshotStore, known: Set<string>, concurrency = 6) {
    this.store = store;
    this.known = known;
    this.concurrency = concurrency;
  }

  /** Hashes the chunk and queues its upload if needed; rejects once any upload has failed. */
  async add(data: Buffer): Promise<ChunkRef> {
    this.throwIfFailed();
    const ref = { sha256: createHash('sha256').update(data).digest('hex'), bytes: data.length };
    this.transfer.totalChunks++;
    this.transfer.totalBytes += data.length;
    if (this.known.has(ref.sha256) || this.inFlight.has(ref.sha256)) return ref;
    while (this.inFlight.size >= this.concurrency) {
      await Promise.race(this.inFlight.values());
      this.throwIfFailed();
    }
    this.transfer.uploadedChunks++;
    this.transfer.uploadedBytes += data.length;
    const upload = this.store.putChunk(ref.sha256, data, this.abort.signal).then(
      () => {
        this.known.add(ref.sha256);
        this.sentBytes += data.length;
        this.inFlight.delete(ref.sha256);
      },
      (error: unknown) => {
        this.inFlight.delete(ref.sha256);
        if (this.failure === undefined) {
          this.failure = error;
          this.abort.abort(error);
        }
      },
    );
    this.inFlight.set(ref.sha256, upload);
    return ref;
  }

  /** Adds chunks in order, appending each one's reference to `refs`. */
  async addAll(chunks: readonly Buffer[], refs: ChunkRef[]): Promise<void> {
    for (const chunk of chunks) refs.push(await this.add(chunk));
  }

  /** Waits for every queued upload; rejects with the first failure. */
  async drain(): Promise<ChunkTransfer> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight.values());
    this.throwIfFailed();
    return this.transfer;
  }

  /** Stops everything in flight (after a failure elsewhere) and waits for it to settle. */
  async cancel(reason: unknown): Promise<void> {
    if (this.failure === undefined) this.failure = reason;
    this.abort.abort(reason);
    while (this.inFlight.size > 0) await Promise.all(this.inFlight.values());
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}
