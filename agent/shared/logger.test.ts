// The agent's log lines: levels by name, ISO 8601 times, the component and the line's event.
import { describe, expect, it } from 'vitest';
import { LogEvent } from './log-events.ts';
import { createLogger } from './logger.ts';

function capture(): { lines: Array<Record<string, unknown>>; write: (line: string) => void } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, write: (line) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
}

describe('createLogger', () => {
  it('writes levels as names and times as ISO 8601, in child loggers too', () => {
    const out = capture();
    const log = createLogger('info', out);
    log.info({ event: LogEvent.restoreDone, snapshotId: 's1' }, 'task restored from snapshot');
    log.child({ jobId: 'j', attempt: 2 }).warn({ event: LogEvent.noticeReceived }, 'spot interruption notice: checkpointing');
    log.debug('not written at info');
    expect(out.lines).toHaveLength(2);
    expect(out.lines[0]).toMatchObject({ level: 'info', component: 'spotsnap', event: 'restore.done', snapshotId: 's1', msg: 'task restored from snapshot' });
    expect(out.lines[1]).toMatchObject({ level: 'warn', jobId: 'j', attempt: 2, event: 'notice.received' });
    for (const line of out.lines) {
      expect(line.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(new Date(String(line.time)).toISOString()).toBe(line.time);
    }
  });

  it('names every level it writes', () => {
    const out = capture();
    const log = createLogger('trace', out);
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const) log[level]('x');
    expect(out.lines.map((l) => l.level)).toEqual(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);
  });
});
