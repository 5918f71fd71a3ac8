// Parses the whole `spotsnap` command line with util.parseArgs in strict mode: the verb, its options and arguments, help and version.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from './command-args.ts';
import { TOP_OPTIONS, topHelp, topUsage, verbHelp, verbUsage } from './help-text.ts';
import { HELP_OPTION, type OptionSpec, type ParsedArgs, type VerbCall, type VerbSpec, verbNamed } from './verbs.ts';

/** A call of a verb that does something (help and version are answered by the parser). */
export type VerbRun = Exclude<VerbCall, { verb: 'help' } | { verb: 'version' }>;

/** What the command line asks for. */
export type CommandLine =
  /** Print `text` on stdout and exit 0; nothing else runs. */
  | { kind: 'help'; text: string }
  | { kind: 'version' }
  /** Print `message` and `usage` on stderr and exit 64; nothing else runs. */
  | { kind: 'refused'; message: string; usage: string }
  | { kind: 'call'; call: VerbRun };

function parseConfig(options: readonly OptionSpec[]): NonNullable<ParseArgsConfig['options']> {
  return Object.fromEntries(options.map((o) => [o.name, o.short ? { type: o.type, short: o.short } : { type: o.type }]));
}

/**
 * Why a strict parse refused `args`, naming the option: read from the tokens of a lenient parse, so that the
 * message does not depend on util.parseArgs's own wording (which it falls back on).
 */
function refusal(args: readonly string[], options: readonly OptionSpec[], error: unknown): string {
  const { tokens } = parseArgs({ args: [...args], options: parseConfig(options), allowPositionals: true, strict: false, tokens: true });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = options.find((o) => o.name === token.name);
    if (!spec) return `unknown option '${token.rawName}'`;
    if (spec.type === 'string' && (token.value === undefined || (!token.inlineValue && token.value.startsWith('-')))) {
      return `option '${token.rawName}' needs a value: ${token.rawName} ${spec.value ?? 'VALUE'}`;
    }
    if (spec.type === 'boolean' && token.value !== undefined) return `option '${token.rawName}' takes no value`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Whether the options before anything else ask for help (which wins over every mistake after it). */
function asksForHelp(args: readonly string[], options: readonly OptionSpec[]): boolean {
  const { tokens } = parseArgs({ args: [...args], options: parseConfig(options), allowPositionals: true, strict: false, tokens: true });
  return tokens.some((t) => t.kind === 'option' && t.name === 'help');
}

/** Where the task's command starts in `run`'s arguments: at `--` or at the first argument that is not an option. */
function commandStart(args: readonly string[]): number {
  const at = args.findIndex((a) => a === '--' || a === '-' || !a.startsWith('-'));
  return at === -1 ? args.length : at;
}

function refused(verb: VerbSpec, message: string): CommandLine {
  return { kind: 'refused', message: `spotsnap ${verb.name}: ${message}`, usage: verbUsage(verb) };
}

function parseVerb(verb: VerbSpec, args: readonly string[]): CommandLine {
  const options = [...verb.options, HELP_OPTION];
  // `run`'s own options come before the task's command; nothing of the command is ever read as one of them.
  const split = verb.name === 'run' ? commandStart(args) : args.length;
  const own = args.slice(0, split);
  if (asksForHelp(own, options)) return { kind: 'help', text: verbHelp(verb) };
  let parsed: ParsedArgs;
  try {
    const { values, positionals } = parseArgs({ args: [...own], options: parseConfig(options), allowPositionals: true, strict: true });
    // No option is `multiple`: a value is never an array.
    parsed = { values: values as ParsedArgs['values'], positionals };
  } catch (error) {
    return refused(verb, refusal(own, options, error));
  }
  let positionals = parsed.positionals;
  if (verb.name === 'run') {
    const command = args.slice(split);
    positionals = command[0] === '--' ? command.slice(1) : command;
    if (positionals.length === 0 || positionals[0] === '') return refused(verb, 'no command given: spotsnap run -- CMD [ARGS...]');
  }
  const required = verb.positionals.filter((p) => p.required).length;
  if (positionals.length < required) return refused(verb, `missing ${verb.positionals[positionals.length]!.name}`);
  if (verb.name !== 'run' && positionals.length > verb.positionals.length) {
    return refused(verb, `unexpected argument ${JSON.stringify(positionals[verb.positionals.length])}`);
  }
  let call: VerbCall;
  try {
    call = verb.build({ values: parsed.values, positionals });
  } catch (error) {
    if (error instanceof UsageError) return refused(verb, error.message);
    throw error;
  }
  if (call.verb === 'version') return { kind: 'version' };
  if (call.verb === 'help') {
    if (call.topic === undefined) return { kind: 'help', text: topHelp() };
    const topic = verbNamed(call.topic);
    return topic ? { kind: 'help', text: verbHelp(topic) } : refused(verb, `unknown verb ${JSON.stringify(call.topic)}`);
  }
  return { kind: 'call', call };
}

/** Reads `spotsnap [--help | --version] VERB [OPTIONS] [ARGS...]`; nothing is run or opened here. */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const at = argv.findIndex((a) => a === '-' || !a.startsWith('-'));
  const before = at === -1 ? argv : argv.slice(0, at);
  if (asksForHelp(before, TOP_OPTIONS)) {
    const verb = at === -1 ? undefined : verbNamed(argv[at]!);
    return { kind: 'help', text: verb ? verbHelp(verb) : topHelp() };
  }
  let version: boolean;
  try {
    const { values } = parseArgs({ args: [...before], options: parseConfig(TOP_OPTIONS), allowPositionals: false, strict: true });
    version = values.version === true;
  } catch (error) {
    return { kind: 'refused', message: `spotsnap: ${refusal(before, TOP_OPTIONS, error)}`, usage: topUsage() };
  }
  if (version) return { kind: 'version' };
  if (at === -1) return { kind: 'refused', message: 'spotsnap: no verb given', usage: topUsage() };
  const verb = verbNamed(argv[at]!);
  if (!verb) return { kind: 'refused', message: `spotsnap: unknown verb ${JSON.stringify(argv[at])}`, usage: topUsage() };
  return parseVerb(verb, argv.slice(at + 1));
}
