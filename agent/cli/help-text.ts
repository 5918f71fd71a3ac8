// Renders the help and usage texts of the command line from the tables: the verbs, the environment variables and the exit codes.
import { ENV_VARS, SDK_ENV_VARS } from '../config/env-vars.ts';
import { VERB_EXIT_CODES } from '../shared/exit-codes.ts';
import { HELP_OPTION, type OptionSpec, VERBS, type VerbSpec } from './verbs.ts';

/** Where lines are wrapped. */
const WIDTH = 100;
/** The widest left column; a longer label gets a line of its own. */
const MAX_LABEL = 30;

/** The options before a verb: `spotsnap --help`, `spotsnap --version`. */
export const TOP_OPTIONS: readonly OptionSpec[] = [
  { name: 'help', short: 'h', type: 'boolean', description: "print this help and exit (before or after a verb: that verb's help)" },
  { name: 'version', type: 'boolean', description: 'print the version and exit' },
];

const REFERENCE = 'Every variable, exit code and log event in full: docs/reference.md.';

/** Markdown as a terminal shows it: no backticks, links as their text. */
export function plainText(markdown: string): string {
  return markdown.replace(/\[([^\]]+)\]\([^)]+\)/g, '$1').replace(/`/g, '');
}

/** The first sentence of a description. */
function firstSentence(text: string): string {
  return /^(.*?[.!?])(\s|$)/s.exec(text)?.[1] ?? text;
}

/** Words filled into lines of at most `width` characters, each line after `indent`. */
function wrap(text: string, indent: string, width = WIDTH): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

/** Two columns: a label and its text, wrapped under itself. */
function columns(rows: ReadonlyArray<readonly [string, string]>, indent = '  '): string[] {
  const width = Math.min(MAX_LABEL, Math.max(0, ...rows.map(([label]) => (label.length <= MAX_LABEL ? label.length : 0))));
  const hanging = ' '.repeat(indent.length + width + 2);
  return rows.flatMap(([label, text]) => {
    const body = wrap(text, hanging);
    if (label.length > width || body.length === 0) return [indent + label, ...body];
    return [`${indent}${label.padEnd(width)}  ${body[0]!.slice(hanging.length)}`, ...body.slice(1)];
  });
}

function optionLabel(option: OptionSpec): string {
  return `${option.short ? `-${option.short}, ` : ''}--${option.name}${option.value ? ` ${option.value}` : ''}`;
}

function defaultOf(defaultText: string): string {
  return `[default: ${plainText(defaultText).replace(/^\((.*)\)$/, '$1')}]`;
}

/** A variable's line: ENV_VARS by name, or SDK_ENV_VARS by its first name. */
function envRow(name: string): readonly [string, string] {
  const own = Object.values(ENV_VARS).find((v) => v.name === name);
  if (own) return [own.name, `${firstSentence(plainText(own.description))} ${defaultOf(own.defaultText)}`];
  const sdk = SDK_ENV_VARS.find((v) => v.names[0] === name);
  if (!sdk) throw new Error(`no environment variable ${name} in agent/config/env-vars.ts`);
  return [[...sdk.names, ...(sdk.andOthers ? ['...'] : [])].join(', '), `${plainText(sdk.description)} ${defaultOf(sdk.defaultText)}`];
}

function section(title: string, lines: readonly string[]): string {
  return [`${title}:`, ...lines].join('\n');
}

/** `spotsnap VERB --help`. */
export function verbHelp(verb: VerbSpec): string {
  const parts = [
    `usage: spotsnap ${verb.usage}`,
    wrap(plainText(verb.summary), '').join('\n'),
    ...verb.details.map((d) => wrap(plainText(d), '').join('\n')),
    section('options', columns([...verb.options, HELP_OPTION].map((o) => [optionLabel(o), plainText(o.description)]))),
  ];
  if (verb.env.length > 0) parts.push(section('environment', [...columns(verb.env.map(envRow)), ...wrap(REFERENCE, '  ')]));
  parts.push(
    section('exit codes', [
      ...(verb.exitIntro ? wrap(plainText(verb.exitIntro), '  ') : []),
      ...columns(verb.exitCodes.map((e) => [String(e.code), plainText(e.description)])),
    ]),
  );
  return `${parts.join('\n\n')}\n`;
}

/** What a refused command line of a verb is followed by. */
export function verbUsage(verb: VerbSpec): string {
  return `usage: spotsnap ${verb.usage}\n(spotsnap ${verb.name} --help says more)\n`;
}

function usageLines(): string {
  return VERBS.map((v, i) => `${i === 0 ? 'usage: ' : '       '}spotsnap ${v.usage}`).join('\n');
}

/** `spotsnap --help`. */
export function topHelp(): string {
  return `${[
    usageLines(),
    wrap(
      'spotsnap keeps a task on an EC2 spot instance from losing its work: on the interruption notice it checkpoints the process tree with CRIU to S3, and the next attempt of the job restores it where it stopped.',
      '',
    ).join('\n'),
    section('verbs', columns(VERBS.map((v) => [v.name, plainText(v.summary)]))),
    section('options', columns(TOP_OPTIONS.map((o) => [optionLabel(o), plainText(o.description)]))),
    section('exit codes', [
      ...columns(VERB_EXIT_CODES.map((e) => [String(e.code), plainText(e.description)])),
      ...wrap("spotsnap run exits with the task's own code, or one of the agent's own (spotsnap run --help).", '  '),
    ]),
    wrap(`spotsnap VERB --help describes a verb: its options, the environment variables and the exit codes that concern it. ${REFERENCE}`, '').join('\n'),
  ].join('\n\n')}\n`;
}

/** What a refused command line without a verb is followed by. */
export function topUsage(): string {
  return `${usageLines()}\n(spotsnap --help says more)\n`;
}
