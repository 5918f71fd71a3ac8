// Logs a transfer's progress every few seconds (bytes, rate, time left before the deadline) and estimates its end.
import type { Logger } from 'pino';
import type { Clock } from './clock.ts';

export interface TransferProgressOptions {
  clock: Clock;
  log: Logger;
  label: string;
  /** Bytes transferred so far. */
  bytes: () => number;
  /** When the instance goes away (ms since the epoch), if known. */
  deadline?: number;
  intervalMs?: number;
}

export class TransferProgress {
  private readonly started: number;
  private readonly timer: NodeJS.Timeout;
  private readonly options: TransferProgressOptions;

  constructor(options: TransferProgressOptions) {
    this.options = options;
    this.started = options.clock.now();
    this.timer = setInterval(() => this.report(), options.intervalMs ?? 2000);
    this.timer.unref();
  }

  /** Bytes per second so far (0 before anything moved). */
  rate(): number {
    const seconds = (this.options.clock.now() - this.started) / 1000;
    return seconds > 0 ? this.options.bytes() / seconds : 0;
  }

  report(): void {
    const now = this.options.clock.now();
    this.options.log.info(
      {
        bytes: this.options.bytes(),
        mibPerSecond: Number((this.rate() / 1048576).toFixed(1)),
        elapsedMs: now - this.started,
        msBeforeDeadline: this.options.deadline === undefined ? undefined : this.options.deadline - now,
      },
      `${this.options.label} in progress`,
    );
  }

  /** Logs when the remaining bytes should be done at the rate so far, and whether that is before the deadline. */
  estimate(remainingBytes: number): void {
    const rate = this.rate();
    const now = this.options.clock.now();
    const etaMs = rate > 0 ? Math.round((remainingBytes / rate) * 1000) : undefined;
    const fields = {
      remainingBytes,
      mibPerSecond: Number((rate / 1048576).toFixed(1)),
      etaMs,
      msBeforeDeadline: this.options.deadline === undefined ? undefined : this.options.deadline - now,
    };
    if (this.options.deadline !== undefined && etaMs !== undefined && now + etaMs > this.options.deadline) {
      this.options.log.warn(fields, `${this.options.label} may not finish before the deadline; it commits only if every byte arrives`);
    } else {
      this.options.log.info(fields, `${this.options.label} estimate`);
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
