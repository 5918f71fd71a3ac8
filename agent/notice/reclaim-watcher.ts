// After a committed checkpoint: waits for the reclaim, and says when the instance has evidently stayed instead.
import type { Logger } from 'pino';
import { LogEvent } from '../shared/log-events.ts';
import type { Clock } from '../shared/clock.ts';
import type { NoticeSource } from './notice-watcher.ts';
import type { SpotNotice } from './spot-notice.ts';

export interface ReclaimWatchOptions {
  source: NoticeSource;
  notice: SpotNotice;
  intervalMs: number;
  /** How long past the notice's deadline the instance may still be up before it counts as staying. */
  graceMs: number;
  clock: Clock;
  signal: AbortSignal;
  log: Logger;
}

/** Why the agent concluded the instance is not going away. */
export type StayReason = 'notice-withdrawn' | 'deadline-passed';

/**
 * Resolves when the instance stays: the notice was withdrawn (absent on two polls in a row), or the
 * deadline passed by more than the grace period (a notice that never came true, or a resumed hibernation).
 * A reclaim ends the process before that. Failed polls count as nothing: the service may be going down.
 */
export async function waitForReclaimOrStay(o: ReclaimWatchOptions): Promise<StayReason> {
  let absent = 0;
  for (;;) {
    o.signal.throwIfAborted();
    if (o.clock.now() > o.notice.deadline + o.graceMs) return 'deadline-passed';
    try {
      const current = await o.source.spotNotice();
      absent = current ? 0 : absent + 1;
      if (absent >= 2) return 'notice-withdrawn';
    } catch (error) {
      o.log.debug(
        { event: LogEvent.reclaimPollFailed, err: error instanceof Error ? error.message : String(error) },
        'metadata poll failed while waiting for the reclaim',
      );
    }
    await o.clock.sleep(o.intervalMs, o.signal);
  }
}
