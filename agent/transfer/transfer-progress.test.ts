import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { progressBar, TransferProgress } from './transfer-progress.ts';

describe('progressBar', () => {
  it('shows share, amounts, rate and time to the deadline', () => {
    expect(progressBar('restore', 120 * 1048576, 240 * 1048576, 60 * 1048576, 92_400)).toBe(
      'restore [############............]  50%  120.0/240.0 MiB  60.0 MiB/s  92 s to deadline',
    );
    expect(progressBar('checkpoint', 5 * 1048576, undefined, 1048576)).toBe('checkpoint  5.0 MiB  1.0 MiB/s');
    expect(progressBar('prune', 500, 2000, 250, undefined, 'objects')).toBe('prune [######..................]  25%  500/2000 objects  250.0 objects/s');
  });
});

describe('TransferProgress', () => {
  it('draws a bar in a terminal and ends it with a newline', () => {
    const clock = new FakeClock();
    const written: string[] = [];
    let done = 0;
    const progress = new TransferProgress({
      clock,
      log: pino({ level: 'silent' }),
      label: 'restore',
      bytes: () => done,
      total: () => 4 * 1048576,
      terminal: { isTTY: true, write: (t) => written.push(t) },
    });
    clock.advance(1000);
    done = 1048576;
    progress.report();
    progress.stop();
    expect(written[0]).toBe('\rrestore [######..................]  25%  1.0/4.0 MiB  1.0 MiB/s\x1b[K');
    expect(written.at(-1)).toBe('\n');
  });

  it('logs structured lines when not in a terminal', () => {
    const clock = new FakeClock();
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const progress = new TransferProgress({
      clock,
      log,
      label: 'checkpoint',
      bytes: () => 2 * 1048576,
      deadline: clock.now() + 60_000,
      terminal: { isTTY: false, write: () => undefined },
    });
    clock.advance(2000);
    progress.report();
    progress.stop();
    expect(lines).toEqual([expect.objectContaining({ msg: 'checkpoint in progress', bytes: 2 * 1048576, mibPerSecond: 1, msBeforeDeadline: 58_000 })]);
  });
});
