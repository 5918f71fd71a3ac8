// Logs a transfer's progress every few seconds: bytes, rate, and time left before the interruption deadline.
import type { Logger } from 'pino';
import type { Clock } from './clock.ts';

export interface TransferProgressOptions {
  clock: Clock;
  log: Logger;
  label: string;
  /** When the instance goes away (ms since the epoch), if known. */
  deadline?: number;
  intervalMs?: number;
}

export class TransferProgress {
  private readonly counts = new Map<string, number>();
  private readonly started: number;
  private readonly timer: NodeJS.Timeout;
  private readonly options: TransferProgressOptions;

  constructor(options: TransferProgressOptions) {
    this.options = options;
    this.started = options.clock.now();
    this.timer = setInterval(() => this.report(), options.intervalMs ?? 2000);
    this.timer.unref();
  }

  /** A callback that records the bytes done so far of one stream. */
  counter(stream: string): (bytesDone: number) => void {
    this.counts.set(stream, 0);
    return (bytesDone) => this.counts.set(stream, bytesDone);
  }

  get bytes(): number {
    let total = 0;
    for (const n of this.counts.values()) total += n;
    return total;
  }

  report(): void {
    const now = this.options.clock.now();
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const bytes = this.bytes;
    this.options.log.info(
      {
        bytes,
        mibPerSecond: Number((bytes / 1048576 / seconds).toFixed(1)),
        elapsedMs: now - this.started,
        msBeforeDeadline: this.options.deadline === undefined ? undefined : this.options.deadline - now,
      },
      `${this.options.label} in progress`,
    );
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
