// Tests that docs/reference.md is what the tables in code render, and that the rendering shows every row of them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENV_VARS } from '../../agent/config/env-vars.ts';
import { RUN_EXIT_CODES, VERB_EXIT_CODES } from '../../agent/shared/exit-codes.ts';
import { LOG_EVENTS } from '../../agent/shared/log-events.ts';
import { S3_LAYOUT } from '../../agent/store/s3-layout.ts';
import { REFERENCE_PATH, renderReference } from './reference.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('docs/reference.md', () => {
  it('is what the tables in code render', () => {
    const written = readFileSync(path.join(root, REFERENCE_PATH), 'utf8');
    expect(written, `${REFERENCE_PATH} differs from the tables in code: run \`npm run docs:reference\``).toBe(renderReference());
  });

  it('lists every variable, exit code, log event and kind of key, each once', () => {
    const reference = renderReference();
    const rowsStarting = (start: string) => reference.split('\n').filter((line) => line.startsWith(start)).length;
    for (const v of Object.values(ENV_VARS)) expect(rowsStarting(`| \`${v.name}\` |`), v.name).toBe(1);
    for (const e of [...RUN_EXIT_CODES, ...VERB_EXIT_CODES]) expect(reference).toContain(`| ${e.code} | ${e.description} |`);
    for (const e of LOG_EVENTS) expect(rowsStarting(`| \`${e.name}\` | ${e.level} |`), e.name).toBe(1);
    for (const e of S3_LAYOUT) expect(rowsStarting(`| \`s3://BUCKET/${e.key}\` |`), e.key).toBe(1);
  });

  it('shows a bad value as the agent logs it', () => {
    expect(renderReference()).toContain('`SPOTSNAP_POLL_INTERVAL_MS="soon": expected a whole number of milliseconds from 100 to 60000 (default 1000)`');
  });
});
