import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { waitForReclaimOrStay } from './reclaim-watcher.ts';
import { parseSpotNotice, type SpotNotice } from './spot-notice.ts';

const log = pino({ level: 'silent' });

function source(answers: Array<SpotNotice | null | Error>) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    async spotNotice() {
      const a = answers[Math.min(calls++, answers.length - 1)];
      if (a instanceof Error) throw a;
      return a ?? null;
    },
  };
}

describe('waitForReclaimOrStay', () => {
  it('says the notice was withdrawn once it is absent on two polls in a row', async () => {
    const clock = new FakeClock();
    const notice = parseSpotNotice(JSON.stringify({ action: 'terminate', time: new Date(clock.now() + 120_000).toISOString() }));
    const s = source([notice, null, notice, null, null]);
    const reason = await waitForReclaimOrStay({ source: s, notice, intervalMs: 1000, graceMs: 60_000, clock, signal: new AbortController().signal, log });
    expect(reason).toBe('notice-withdrawn');
    expect(s.calls).toBe(5);
  });

  it('says the deadline passed when the notice stays but the instance does too', async () => {
    const clock = new FakeClock();
    const notice = parseSpotNotice(JSON.stringify({ action: 'stop', time: new Date(clock.now() + 10_000).toISOString() }));
    const s = source([notice, new Error('timed out')]);
    const reason = await waitForReclaimOrStay({ source: s, notice, intervalMs: 5000, graceMs: 20_000, clock, signal: new AbortController().signal, log });
    expect(reason).toBe('deadline-passed');
    expect(clock.now()).toBeGreaterThan(notice.deadline + 20_000);
  });
});
