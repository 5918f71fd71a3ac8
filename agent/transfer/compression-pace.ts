// Judges whether compressing chunks speeds a checkpoint up: from how fast the workers compress and how fast packs go to S3, both measured as the checkpoint runs.
//
// A checkpoint moves at the pace of its slowest stage. Compressing, the workers feed S3 at most
// `workers x zstd rate` raw bytes a second (and S3 then carries fewer bytes); not compressing, S3 takes raw
// bytes at the link's rate. So compression pays when the workers can compress at least as fast as the link
// carries raw bytes: on many cores against a real link it does; on two cores against a loopback server it
// makes the checkpoint several times slower. The link's rate is judged from each pack's own PUT (its bytes
// over its time, times the packs in flight), not from the bytes sent so far, which are low whenever the
// workers are what holds the checkpoint back.

/** Samples needed of each before judging; until then, compression is assumed to pay. */
const MIN_SAMPLES = 3;
/** Weight of each new sample in the running averages. */
const WEIGHT = 0.25;

class RunningRate {
  samples = 0;
  bytesPerMs = 0;

  note(bytes: number, ms: number): void {
    if (!(ms > 0) || bytes <= 0) return;
    const rate = bytes / ms;
    this.bytesPerMs = this.samples === 0 ? rate : this.bytesPerMs + WEIGHT * (rate - this.bytesPerMs);
    this.samples++;
  }
}

export class CompressionPace {
  private readonly zstd = new RunningRate();
  private readonly put = new RunningRate();

  /** A worker compressed `rawBytes` in `ms`. */
  noteCompressed(rawBytes: number, ms: number): void {
    this.zstd.note(rawBytes, ms);
  }

  /** A pack of `bytes` took `ms` from its request to its answer. */
  notePut(bytes: number, ms: number): void {
    this.put.note(bytes, ms);
  }

  /** Whether `workers` compressing keep up with `packsInFlight` uploads of raw bytes (true until both were measured). */
  pays(workers: number, packsInFlight: number): boolean {
    if (this.zstd.samples < MIN_SAMPLES || this.put.samples < MIN_SAMPLES) return true;
    return workers * this.zstd.bytesPerMs >= packsInFlight * this.put.bytesPerMs;
  }

  /** How fast one pack's PUT takes bytes, bytes per ms, once measured. */
  putBytesPerMs(): number | undefined {
    return this.put.samples < MIN_SAMPLES ? undefined : this.put.bytesPerMs;
  }

  /** The measured rates in MB/s, for the log (undefined until measured). */
  figures(): { zstdMBps?: number; putMBps?: number } {
    const mbps = (r: RunningRate) => (r.samples > 0 ? Math.round(r.bytesPerMs / 1000) : undefined);
    return { zstdMBps: mbps(this.zstd), putMBps: mbps(this.put) };
  }
}
