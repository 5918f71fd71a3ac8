// The log events table: names and keys unique, names of one form, and the key map agreeing with the table.
import { describe, expect, it } from 'vitest';
import { LOG_EVENTS, LogEvent } from './log-events.ts';

describe('LOG_EVENTS', () => {
  it('has unique names of the form area.what-happened, each with its key', () => {
    const names = LOG_EVENTS.map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(LOG_EVENTS.map((e) => e.key)).size).toBe(names.length);
    for (const e of LOG_EVENTS) {
      expect(e.name).toMatch(/^[a-z]+\.[a-z]+(-[a-z]+)*$/);
      expect(LogEvent[e.key]).toBe(e.name);
      expect(e.description).toMatch(/\.$/);
    }
  });
});
