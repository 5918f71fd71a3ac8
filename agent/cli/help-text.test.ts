// The help texts come from the tables: each verb's options, the variables that concern it and its exit codes; nothing past the width.
import { describe, expect, it } from 'vitest';
import { ENV_VARS } from '../config/env-vars.ts';
import { RUN_EXIT_CODES } from '../shared/exit-codes.ts';
import { plainText, topHelp, verbHelp } from './help-text.ts';
import { VERBS, verbNamed } from './verbs.ts';

describe('help texts', () => {
  it("list each verb's options, variables and exit codes", () => {
    for (const verb of VERBS) {
      const text = verbHelp(verb);
      for (const option of verb.options) expect(text, `${verb.name} --${option.name}`).toMatch(new RegExp(`^ {2}--${option.name}\\b`, 'm'));
      expect(text).toMatch(/^ {2}-h, --help {2}/m);
      for (const name of verb.env) expect(text, `${verb.name} ${name}`).toMatch(new RegExp(`^ {2}${name}\\b`, 'm'));
      for (const e of verb.exitCodes) expect(text, `${verb.name} ${e.code}`).toMatch(new RegExp(`^ {2}${e.code} +\\S`, 'm'));
    }
  });

  it('give run every variable the agent reads and every code of its own', () => {
    const run = verbHelp(verbNamed('run')!);
    for (const v of Object.values(ENV_VARS)) expect(run).toMatch(new RegExp(`^ {2}${v.name}\\b`, 'm'));
    for (const e of RUN_EXIT_CODES) expect(run).toContain(plainText(e.description).split(' ').slice(0, 4).join(' '));
    expect(run).toContain("The task's own exit code");
  });

  it('keep to 100 columns, except a word longer than that', () => {
    for (const text of [topHelp(), ...VERBS.map(verbHelp)]) {
      for (const line of text.split('\n')) if (line.length > 100) expect(line.trim(), line).not.toMatch(/\s/);
    }
  });

  it('show markdown as plain text', () => {
    expect(plainText('`SPOTSNAP_PATHS` and [design.md](design.md#x)')).toBe('SPOTSNAP_PATHS and design.md');
  });
});
