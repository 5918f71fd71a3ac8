// Renders docs/reference.md from the tables in code: the environment variables, the exit codes, the log events and the S3 layout.
import { describeProblems } from '../../agent/config/config.ts';
import { ENV_VARS, SDK_ENV_VARS } from '../../agent/config/env-vars.ts';
import { ExitCode, RUN_EXIT_CODES, VERB_EXIT_CODES, type ExitCodeSpec } from '../../agent/shared/exit-codes.ts';
import { LOG_EVENTS } from '../../agent/shared/log-events.ts';
import { S3_LAYOUT, S3_LAYOUT_PLACEHOLDERS } from '../../agent/store/s3-layout.ts';

/** Where the reference is written, from the repository root. */
export const REFERENCE_PATH = 'docs/reference.md';

/** A markdown table; a `|` inside a cell is escaped. */
function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const code = (text: string) => `\`${text}\``;

function configuration(): string {
  const poll = ENV_VARS.pollIntervalMs;
  const example = describeProblems([{ variable: poll.name, value: 'soon', expected: poll.expected }]);
  const rows = [
    ...Object.values(ENV_VARS).map((v) => [code(v.name), v.defaultText, v.description]),
    ...SDK_ENV_VARS.map((v) => [[...v.names.map(code), ...(v.andOthers ? ['...'] : [])].join(', '), v.defaultText, v.description]),
  ];
  return [
    '## Configuration',
    'Everything is read from the environment (`agent/config/env-vars.ts`). An unset or blank variable has its default.',
    table(['variable', 'default', 'meaning'], rows),
    `A bad value is logged with its name, its value and what is expected, for example\n${code(example)}. Without\n` +
      `${code(`${ENV_VARS.strict.name}=true`)} the task then runs without snapshots; with it, the task is not started (code ${ExitCode.configInvalid}).`,
  ].join('\n\n');
}

function exitCodes(): string {
  const rows = (specs: readonly ExitCodeSpec[]) => specs.map((e) => [String(e.code), e.description]);
  return [
    '## Exit codes',
    "`spotsnap run` exits with the task's own exit code (128+N when the task was killed by signal N). Its own codes\n" + '(`agent/shared/exit-codes.ts`):',
    table(['code', 'meaning'], rows(RUN_EXIT_CODES)),
    '`spotsnap doctor`, `ls`, `inspect`, `prune`, `report`, `version` and `help` (`spotsnap VERB --help` lists the codes of each):',
    table(['code', 'meaning'], rows(VERB_EXIT_CODES)),
  ].join('\n\n');
}

function logEvents(): string {
  return [
    '## Log events',
    "The agent logs JSON lines on stderr (the task's own output is left as it is). Each line has `level` by name (`debug`, `info`, `warn`,\n" +
      '`error`), `time` in ISO 8601, `component: "spotsnap"`, `jobId` and `attempt` once spotsnap is on, `event`, and `msg`, which is written\n' +
      'for people and may change: key on `event` (`agent/shared/log-events.ts`).',
    table(
      ['event', 'level', 'when', 'fields'],
      LOG_EVENTS.map((e) => [code(e.name), e.level, e.description, e.fields === '' ? '' : e.fields.split(', ').map(code).join(', ')]),
    ),
  ].join('\n\n');
}

function s3Layout(): string {
  return [
    '## S3 layout',
    'Every key is built in `agent/store/s3-layout.ts`. Under `SPOTSNAP_S3_URI`, `s3://BUCKET/PREFIX`:',
    table(
      ['key', 'meaning'],
      S3_LAYOUT.map((e) => [code(`s3://BUCKET/${e.key}`), e.meaning]),
    ),
    table(
      ['placeholder', 'meaning'],
      S3_LAYOUT_PLACEHOLDERS.map((p) => [code(p.placeholder), p.meaning]),
    ),
    'What a manifest records: [design.md](design.md#the-snapshot-in-s3).',
  ].join('\n\n');
}

/** The whole of docs/reference.md. */
export function renderReference(): string {
  return `${[
    '<!-- Generated from the tables in agent/config/env-vars.ts, agent/shared/exit-codes.ts, agent/shared/log-events.ts and agent/store/s3-layout.ts by `npm run docs:reference`: edit those, not this file. -->',
    '# Reference',
    "spotsnap's contract, generated from the code: the settings it reads, the exit codes it gives, the events it logs, and the keys it writes in S3.",
    configuration(),
    exitCodes(),
    logEvents(),
    s3Layout(),
  ].join('\n\n')}\n`;
}
