// The agent's own exit codes with what each means, as tables; docs/reference.md's "Exit codes" is rendered from them (npm run docs:reference).

/** One exit code: its number, its name in code, and what it means (markdown, for the reference). */
export interface ExitCodeSpec {
  readonly code: number;
  readonly name: string;
  readonly description: string;
}

/** Every exit code `spotsnap run` produces besides the task's own code, by number. */
export const RUN_EXIT_CODES = [
  { code: 64, name: 'usage', description: 'Wrong command line: no command, or an unknown option before it (the message names it).' },
  {
    code: 70,
    name: 'internalError',
    description:
      'Internal error of the agent: a bug (please report it with the log). No behaviour of CRIU or of the task leads to it: a restore that fails in any way falls back to the snapshot before or a fresh start.',
  },
  { code: 126, name: 'commandNotExecutable', description: 'The command could not be executed (as in a shell).' },
  { code: 127, name: 'commandNotFound', description: 'The command was not found (as in a shell).' },
  { code: 175, name: 'checkpointFailed', description: 'A checkpoint failed and the task could not go on (the code Fusion Snapshots uses).' },
  {
    code: 176,
    name: 'restoreFailed',
    description: 'No committed snapshot could be restored and `SPOTSNAP_ON_RESTORE_FAILURE=fail` (the code Fusion Snapshots uses).',
  },
  {
    code: 177,
    name: 'checkpointedForRetry',
    description:
      'A checkpoint was committed and the agent exited (`SPOTSNAP_AFTER_CHECKPOINT=exit`, or a SIGTERM after the commit): retry the job to resume it.',
  },
  {
    code: 178,
    name: 'configInvalid',
    description: '`SPOTSNAP_STRICT=true` and the configuration is invalid or CRIU / PID namespaces are unusable: the task was not started.',
  },
] as const satisfies readonly ExitCodeSpec[];

/** The exit codes of `spotsnap doctor`, `ls`, `inspect`, `prune`, `report`, `version` and `help`. */
export const VERB_EXIT_CODES = [
  { code: 0, name: 'ok', description: 'Success (for `doctor`: a checkpoint can work here, warnings or not).' },
  {
    code: 1,
    name: 'failed',
    description:
      'An operational failure: a check failed (`doctor`), no such job or snapshot, or its manifest could not be read (`inspect`), a job was left whole because a manifest of it could not be read (`prune`), S3 refused or failed a call.',
  },
  {
    code: 64,
    name: 'usage',
    description:
      "Wrong command line: an unknown option, an option without its value, a missing or extra argument; the message names it, with the verb's usage.",
  },
] as const satisfies readonly ExitCodeSpec[];

type VerbExitCodeRow = (typeof VERB_EXIT_CODES)[number];

/** The codes of VERB_EXIT_CODES by name: `VerbExitCode.failed` is 1. */
export const VerbExitCode = Object.fromEntries(VERB_EXIT_CODES.map((row) => [row.name, row.code])) as {
  readonly [Row in VerbExitCodeRow as Row['name']]: Row['code'];
};

type RunExitCodeRow = (typeof RUN_EXIT_CODES)[number];

/** The codes of RUN_EXIT_CODES by name: `ExitCode.configInvalid` is 178. */
export const ExitCode = Object.fromEntries(RUN_EXIT_CODES.map((row) => [row.name, row.code])) as {
  readonly [Row in RunExitCodeRow as Row['name']]: Row['code'];
};

export type AgentExitCode = RunExitCodeRow['code'];

/** The exit code a shell reports for a process killed by a signal: 128 + the signal's number. */
export function exitCodeForSignal(signalNumber: number): number {
  return 128 + signalNumber;
}
