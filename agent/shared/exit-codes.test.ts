// Tests the exit-code tables: each code and name once, and the codes the agent has always used.
import { describe, expect, it } from 'vitest';
import { ExitCode, exitCodeForSignal, RUN_EXIT_CODES, VERB_EXIT_CODES } from './exit-codes.ts';

describe('exit codes', () => {
  it('keep the numbers they have always had', () => {
    expect(ExitCode).toEqual({
      usage: 64,
      internalError: 70,
      commandNotExecutable: 126,
      commandNotFound: 127,
      checkpointFailed: 175,
      restoreFailed: 176,
      checkpointedForRetry: 177,
      configInvalid: 178,
    });
    expect(VERB_EXIT_CODES.map((e) => e.code)).toEqual([0, 1, ExitCode.usage]);
  });

  it('list each code and each name once per table, with what it means', () => {
    for (const table of [RUN_EXIT_CODES, VERB_EXIT_CODES]) {
      expect(new Set(table.map((e) => e.code)).size).toBe(table.length);
      expect(new Set(table.map((e) => e.name)).size).toBe(table.length);
      for (const e of table) expect(e.description, String(e.code)).toMatch(/\.$/);
    }
  });

  it('report a task killed by a signal as a shell does', () => {
    expect(exitCodeForSignal(9)).toBe(137);
  });
});
