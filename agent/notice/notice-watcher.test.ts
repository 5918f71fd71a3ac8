import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { watchForNotice, type NoticeSource } from './notice-watcher.ts';
import { parseSpotNotice, type SpotNotice } from './spot-notice.ts';

const notice = parseSpotNotice('{"action":"terminate","time":"2026-11-21T09:02:00Z"}');

function scripted(answers: Array<SpotNotice | null | Error>): NoticeSource & { calls: number } {
  const source = {
    calls: 0,
    async spotNotice() {
      const answer = answers[Math.min(source.calls++, answers.length - 1)];
      if (answer instanceof Error) throw answer;
      return answer ?? null;
    },
  };
  return source;
}

function capturingLog() {
  const lines: Array<{ msg: string; failures?: number }> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

describe('watchForNotice', () => {
  it('polls at the interval until a notice appears', async () => {
    const clock = new FakeClock();
    const source = scripted([null, null, null, notice]);
    const { log } = capturingLog();
    const found = await watchForNotice({ source, intervalMs: 1000, clock, signal: new AbortController().signal, log });
    expect(found).toEqual(notice);
    expect(source.calls).toBe(4);
    expect(clock.sleeps).toEqual([1000, 1000, 1000]);
  });

  it('keeps polling through errors, logging each new error once and the recovery', async () => {
    const clock = new FakeClock();
    const down = new Error('connect ECONNREFUSED');
    const source = scripted([down, down, down, new Error('500'), null, notice]);
    const { log, lines } = capturingLog();
    await watchForNotice({ source, intervalMs: 500, clock, signal: new AbortController().signal, log });
    expect(lines.map((l) => l.msg)).toEqual([
      'polling the spot notice failed; will retry',
      'polling the spot notice failed; will retry',
      'metadata service answers again',
    ]);
    expect(lines[2]!.failures).toBe(4);
  });

  it('passes over a notice already acted on that is still posted, and returns the next new one', async () => {
    const clock = new FakeClock();
    const later = parseSpotNotice('{"action":"terminate","time":"2026-11-21T09:30:00Z"}');
    const source = scripted([notice, notice, notice, later]);
    const found = await watchForNotice({
      source,
      intervalMs: 1000,
      clock,
      signal: new AbortController().signal,
      log: capturingLog().log,
      ignore: (n) => n.id === notice.id,
    });
    expect(found).toEqual(later);
    expect(source.calls).toBe(4);
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    const clock = new FakeClock();
    const source = scripted([null]);
    const watching = watchForNotice({ source, intervalMs: 1000, clock, signal: controller.signal, log: capturingLog().log });
    controller.abort(new Error('task ended'));
    await expect(watching).rejects.toThrow('task ended');
  });
});
