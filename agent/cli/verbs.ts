// The verbs of the `spotsnap` command line as one table: usage, options, arguments, the variables and exit codes that concern each.
import { ENV_VARS } from '../config/env-vars.ts';
import { type ExitCodeSpec, RUN_EXIT_CODES, VERB_EXIT_CODES } from '../shared/exit-codes.ts';
import { UsageError } from './command-args.ts';
import type { DoctorOptions } from './doctor-command.ts';
import type { InspectOptions } from './inspect-command.ts';
import type { LsOptions } from './ls-command.ts';
import type { PruneOptions } from './prune-command.ts';
import type { ReportOptions } from './report-command.ts';

/** One option: `--name` (and `-short`), a switch or one taking a value. */
export interface OptionSpec {
  readonly name: string;
  readonly short?: string;
  readonly type: 'boolean' | 'string';
  /** How the help names the value of an option that takes one. */
  readonly value?: string;
  readonly description: string;
}

/** One argument that is not an option, in its place. */
export interface PositionalSpec {
  readonly name: string;
  readonly required: boolean;
}

/** The values of a verb's options as util.parseArgs gives them, and its arguments. */
export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
}

/** What a verb's command line asks for, once parsed. */
export type VerbCall =
  | { verb: 'run'; command: string[] }
  | { verb: 'doctor'; options: DoctorOptions }
  | { verb: 'ls'; options: LsOptions }
  | { verb: 'inspect'; options: InspectOptions }
  | { verb: 'prune'; options: PruneOptions }
  | { verb: 'report'; options: ReportOptions }
  | { verb: 'version' }
  | { verb: 'help'; topic: string | undefined };

export type VerbName = VerbCall['verb'];

export interface VerbSpec {
  readonly name: VerbName;
  /** After `spotsnap `: the verb and what it takes. */
  readonly usage: string;
  /** One sentence, for the list of verbs. */
  readonly summary: string;
  /** Paragraphs after the summary in the verb's help (markdown-light: backticks are dropped on a terminal). */
  readonly details: readonly string[];
  /** The verb's options besides -h/--help, which every verb has. */
  readonly options: readonly OptionSpec[];
  readonly positionals: readonly PositionalSpec[];
  /** The variables that concern it, by name (agent/config/env-vars.ts, SDK_ENV_VARS by their first name). */
  readonly env: readonly string[];
  /** What its exit codes say before the table, if anything (`run` passes the task's own on). */
  readonly exitIntro?: string;
  readonly exitCodes: readonly ExitCodeSpec[];
  /** Turns parsed options and arguments into the call (throws UsageError for a combination it refuses). */
  readonly build: (args: ParsedArgs) => VerbCall;
}

export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', type: 'boolean', description: 'print this help and exit (runs nothing)' };

const S3_OPTION: OptionSpec = { name: 's3', type: 'string', value: 's3://BUCKET/PREFIX', description: 'the prefix to work on (default: SPOTSNAP_S3_URI)' };
const SDK_ENV = ['AWS_ENDPOINT_URL_S3', 'AWS_REGION'];
const S3_ENV = [ENV_VARS.s3Uri.name, ...SDK_ENV];

const text = (args: ParsedArgs, name: string): string | undefined => {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
};
const flag = (args: ParsedArgs, name: string): boolean => args.values[name] === true;

/** Every verb, in the order the help lists them. */
export const VERBS: readonly VerbSpec[] = [
  {
    name: 'run',
    usage: 'run [--] CMD [ARGS...]',
    summary:
      'Runs CMD as the task: with SPOTSNAP_ENABLED=true it is checkpointed to S3 on a spot notice and restored on the next attempt; otherwise spotsnap is a transparent wrapper.',
    details: [
      "Everything after `--`, or from the first argument that is not an option, is the task's command and its arguments, never spotsnap's: `spotsnap run -- CMD --help` runs CMD with `--help`.",
      'Off, the task runs as a plain child: same output, same exit code, signals passed on. On, a bad setting, a missing CRIU or an unreachable S3 are logged and the task runs anyway, unless SPOTSNAP_STRICT=true.',
      'The agent logs JSON lines on stderr: `level` by name, `time` in ISO 8601, and an `event` to key on (the list: docs/reference.md, Log events).',
    ],
    options: [],
    positionals: [{ name: 'CMD', required: true }],
    env: [...Object.values(ENV_VARS).map((v) => v.name), ...SDK_ENV],
    exitIntro: "The task's own exit code (128+N when the task was killed by signal N), or one of the agent's own:",
    exitCodes: RUN_EXIT_CODES,
    // The command is split off before options are parsed (command-line.ts): it arrives as the positionals.
    build: (args) => ({ verb: 'run', command: [...args.positionals] }),
  },
  {
    name: 'doctor',
    usage: 'doctor [--json]',
    summary:
      'Checks here and now whether a checkpoint can work (CRIU, kernel, capabilities, seccomp, PID namespaces, metadata service, S3 prefix, disk space), and says what to fix.',
    details: [
      'Run it in the container, with the options and the environment the task gets. It writes and deletes one probe object under the S3 prefix. Every variable `spotsnap run` reads is checked as it would read it; a warning names what a checkpoint will lack, a failure means that a checkpoint cannot work here yet.',
      '`--json` prints one JSON document: `verdict` (ok, warn or fail), `canCheckpoint`, `summary`, and `checks`, each with `name`, `status` (ok, warn or fail), `detail` and `fix` (null when there is nothing to fix).',
    ],
    options: [{ name: 'json', type: 'boolean', description: 'one JSON document with every check and the verdict, instead of the table' }],
    positionals: [],
    env: [
      ENV_VARS.s3Uri.name,
      ENV_VARS.jobId.name,
      ENV_VARS.criuPath.name,
      ENV_VARS.tcpMode.name,
      ENV_VARS.workDir.name,
      ENV_VARS.sse.name,
      ENV_VARS.sseKmsKeyId.name,
      ENV_VARS.imdsEndpoint.name,
      ...SDK_ENV,
    ],
    exitCodes: VERB_EXIT_CODES,
    build: (args) => ({ verb: 'doctor', options: { json: flag(args, 'json') } }),
  },
  {
    name: 'ls',
    usage: 'ls [--job ID] [--s3 s3://BUCKET/PREFIX] [--json]',
    summary: 'Lists the snapshots under the prefix with their state: committed, incomplete (never restored), unreadable, and finished jobs.',
    details: [],
    options: [
      { name: 'job', type: 'string', value: 'ID', description: "only this job's snapshots" },
      S3_OPTION,
      { name: 'json', type: 'boolean', description: 'a JSON array instead of the table' },
    ],
    positionals: [],
    env: S3_ENV,
    exitCodes: VERB_EXIT_CODES,
    build: (args) => ({ verb: 'ls', options: { s3: text(args, 's3'), job: text(args, 'job'), json: flag(args, 'json') } }),
  },
  {
    name: 'inspect',
    usage: 'inspect JOB [SNAPSHOT] [--s3 s3://BUCKET/PREFIX] [--json]',
    summary: "Shows a snapshot's manifest readably: the job's newest committed one, or SNAPSHOT.",
    details: ['A job or snapshot that is not there is an operational failure (exit 1), not a wrong command line.'],
    options: [S3_OPTION, { name: 'json', type: 'boolean', description: 'the manifest as JSON' }],
    positionals: [
      { name: 'JOB', required: true },
      { name: 'SNAPSHOT', required: false },
    ],
    env: S3_ENV,
    exitCodes: VERB_EXIT_CODES,
    build: (args) => ({
      verb: 'inspect',
      options: { jobId: args.positionals[0]!, snapshotId: args.positionals[1], s3: text(args, 's3'), json: flag(args, 'json') },
    }),
  },
  {
    name: 'prune',
    usage: 'prune [--older-than AGE] [--dry-run] [--s3 s3://BUCKET/PREFIX]',
    summary: 'Deletes finished jobs and the leftovers of checkpoints that never committed, older than an age.',
    details: ['Nothing of a job with a committed manifest it cannot read is deleted (exit 1 then); nothing younger than the age is touched.'],
    options: [
      { name: 'older-than', type: 'string', value: 'AGE', description: 'only what is older than AGE: 30m, 12h or 7d (default 7d)' },
      { name: 'dry-run', type: 'boolean', description: 'say what would be deleted, and delete nothing' },
      S3_OPTION,
    ],
    positionals: [],
    env: S3_ENV,
    exitCodes: VERB_EXIT_CODES,
    build: (args) => ({ verb: 'prune', options: { s3: text(args, 's3'), olderThan: text(args, 'older-than'), dryRun: flag(args, 'dry-run') } }),
  },
  {
    name: 'report',
    usage: 'report [s3://BUCKET/PREFIX] [--json] [--svg FILE]',
    summary:
      "Adds up the attempts' reports under the prefix, per job: interruptions survived, work not redone, checkpoint and restore time, bytes sent, cost saved.",
    details: [],
    options: [
      S3_OPTION,
      { name: 'json', type: 'boolean', description: 'a JSON array of the jobs instead of the table' },
      { name: 'svg', type: 'string', value: 'FILE', description: 'also write a chart of where the time went to FILE' },
    ],
    positionals: [{ name: 's3://BUCKET/PREFIX', required: false }],
    env: S3_ENV,
    exitCodes: VERB_EXIT_CODES,
    build: (args) => {
      const option = text(args, 's3');
      const [argument] = args.positionals;
      if (option !== undefined && argument !== undefined) throw new UsageError('give the prefix once: as an argument or with --s3, not both');
      return { verb: 'report', options: { s3: option ?? argument, json: flag(args, 'json'), svg: text(args, 'svg') } };
    },
  },
  {
    name: 'version',
    usage: 'version',
    summary: "Prints the agent's version (as `spotsnap --version` does).",
    details: [],
    options: [],
    positionals: [],
    env: [],
    exitCodes: VERB_EXIT_CODES.filter((e) => e.code !== 1),
    build: () => ({ verb: 'version' }),
  },
  {
    name: 'help',
    usage: 'help [VERB]',
    summary: 'Prints the help of VERB, or the list of verbs (as `spotsnap VERB --help` and `spotsnap --help` do).',
    details: [],
    options: [],
    positionals: [{ name: 'VERB', required: false }],
    env: [],
    exitCodes: VERB_EXIT_CODES.filter((e) => e.code !== 1),
    build: (args) => ({ verb: 'help', topic: args.positionals[0] }),
  },
];

/** A verb by name, or undefined. */
export function verbNamed(name: string): VerbSpec | undefined {
  return VERBS.find((v) => v.name === name);
}
