// Shows a transfer's progress: a bar in a terminal, periodic structured log lines in a container log.
import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.ts';
import { LogEvent } from '../shared/log-events.ts';

/** Where a progress bar may be drawn: a terminal. */
export interface ProgressTerminal {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface TransferProgressOptions {
  clock: Clock;
  log: Logger;
  label: string;
  /** Bytes transferred so far. */
  bytes: () => number;
  /** Bytes to transfer in all, when known. */
  total?: () => number | undefined;
  /** When the instance goes away (ms since the epoch), if known. */
  deadline?: number;
  intervalMs?: number;
  /** The agent's stderr: a bar when it is a terminal, log lines otherwise. */
  terminal?: ProgressTerminal;
  /** What is counted: bytes (the default) or objects. */
  unit?: 'bytes' | 'objects';
}

const MIB = 1048576;

/** One line of a progress bar: `label [#####.....]  45%  120.0/260.0 MiB  85.3 MiB/s  92 s to deadline`. */
export function progressBar(
  label: string,
  done: number,
  total: number | undefined,
  perSecond: number,
  msBeforeDeadline?: number,
  unit: 'bytes' | 'objects' = 'bytes',
): string {
  const width = 24;
  const share = total ? Math.min(1, done / total) : undefined;
  const bar = share === undefined ? '' : ` [${'#'.repeat(Math.round(share * width)).padEnd(width, '.')}] ${String(Math.floor(share * 100)).padStart(3)}%`;
  const [scale, name, digits] = unit === 'bytes' ? [MIB, 'MiB', 1] : [1, 'objects', 0];
  const amount = total ? `${(done / scale).toFixed(digits)}/${(total / scale).toFixed(digits)} ${name}` : `${(done / scale).toFixed(digits)} ${name}`;
  const deadline = msBeforeDeadline === undefined ? '' : `  ${Math.round(msBeforeDeadline / 1000)} s to deadline`;
  return `${label}${bar}  ${amount}  ${(perSecond / scale).toFixed(1)} ${name}/s${deadline}`;
}

export class TransferProgress {
  private readonly started: number;
  private readonly timer: NodeJS.Timeout;
  private readonly options: TransferProgressOptions;
  private readonly tty: boolean;

  constructor(options: TransferProgressOptions) {
    this.options = options;
    this.started = options.clock.now();
    this.tty = options.terminal?.isTTY === true;
    this.timer = setInterval(() => this.report(), options.intervalMs ?? (this.tty ? 250 : 2000));
    this.timer.unref();
  }

  /** Bytes per second so far (0 before anything moved). */
  rate(): number {
    const seconds = (this.options.clock.now() - this.started) / 1000;
    return seconds > 0 ? this.options.bytes() / seconds : 0;
  }

  report(): void {
    const now = this.options.clock.now();
    const msBeforeDeadline = this.options.deadline === undefined ? undefined : this.options.deadline - now;
    if (this.tty) {
      const line = progressBar(this.options.label, this.options.bytes(), this.options.total?.(), this.rate(), msBeforeDeadline, this.options.unit);
      this.options.terminal!.write(`\r${line}\x1b[K`);
      return;
    }
    this.options.log.info(
      {
        event: LogEvent.transferProgress,
        bytes: this.options.bytes(),
        totalBytes: this.options.total?.(),
        mibPerSecond: Number((this.rate() / MIB).toFixed(1)),
        elapsedMs: now - this.started,
        msBeforeDeadline,
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
      mibPerSecond: Number((rate / MIB).toFixed(1)),
      etaMs,
      msBeforeDeadline: this.options.deadline === undefined ? undefined : this.options.deadline - now,
    };
    if (this.options.deadline !== undefined && etaMs !== undefined && now + etaMs > this.options.deadline) {
      this.options.log.warn(
        { event: LogEvent.transferLate, ...fields },
        `${this.options.label} may not finish before the deadline; it commits only if every byte arrives`,
      );
    } else {
      this.options.log.info({ event: LogEvent.transferEstimate, ...fields }, `${this.options.label} estimate`);
    }
  }

  stop(): void {
    clearInterval(this.timer);
    if (this.tty) {
      this.report();
      this.options.terminal!.write('\n');
    }
  }
}
