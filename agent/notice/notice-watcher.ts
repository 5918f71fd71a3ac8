// Polls the metadata service until a spot interruption notice appears; errors are logged and polling goes on.
import type { Logger } from 'pino';
import { LogEvent } from '../shared/log-events.ts';
import type { Clock } from '../shared/clock.ts';
import type { SpotNotice } from './spot-notice.ts';

export interface NoticeSource {
  spotNotice(): Promise<SpotNotice | null>;
}

export interface WatchOptions {
  source: NoticeSource;
  intervalMs: number;
  clock: Clock;
  signal: AbortSignal;
  log: Logger;
  /** Notices to pass over (ones already acted on, still posted). */
  ignore?: (notice: SpotNotice) => boolean;
}

/**
 * Resolves with the first notice seen; rejects only when `signal` aborts. A failing poll is logged when its
 * message changes (not on every poll), and the next success after failures is logged too.
 */
export async function watchForNotice({ source, intervalMs, clock, signal, log, ignore }: WatchOptions): Promise<SpotNotice> {
  let lastError: string | undefined;
  let failures = 0;
  for (;;) {
    signal.throwIfAborted();
    try {
      const notice = await source.spotNotice();
      if (failures > 0) log.info({ event: LogEvent.metadataRecovered, failures }, 'metadata service answers again');
      failures = 0;
      lastError = undefined;
      if (notice && !ignore?.(notice)) return notice;
    } catch (error) {
      failures++;
      const message = error instanceof Error ? error.message : String(error);
      if (message !== lastError) log.warn({ event: LogEvent.metadataPollFailed, failures, err: message }, 'polling the spot notice failed; will retry');
      lastError = message;
    }
    await clock.sleep(intervalMs, signal);
  }
}
