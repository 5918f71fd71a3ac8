// The `spotsnap` command line: parses it (command-line.ts), answers help, version and mistakes, and runs the verb asked for.
import { runCommand } from '../run/run-command.ts';
import { ExitCode, VerbExitCode } from '../shared/exit-codes.ts';
import { createS3Client } from '../store/snapshot-store.ts';
import { AGENT_VERSION } from '../shared/version.ts';
import { UsageError } from './command-args.ts';
import { parseCommandLine, type VerbRun } from './command-line.ts';
import { doctorCommand, type DoctorOptions } from './doctor-command.ts';
import { verbUsage } from './help-text.ts';
import { inspectCommand, type InspectOptions } from './inspect-command.ts';
import { lsCommand, type LsOptions } from './ls-command.ts';
import { pruneCommand, type PruneOptions } from './prune-command.ts';
import { reportCommand, type ReportOptions } from './report-command.ts';
import { verbNamed } from './verbs.ts';

/** Where a verb prints its result, a line at a time. */
export type Out = (line: string) => void;

/** What each verb does once its command line is read (injected by tests; `processVerbs` is the real one). */
export interface VerbHandlers {
  run(command: readonly string[]): Promise<number>;
  doctor(options: DoctorOptions, out: Out): Promise<number>;
  ls(options: LsOptions, out: Out): Promise<number>;
  inspect(options: InspectOptions, out: Out): Promise<number>;
  prune(options: PruneOptions, out: Out): Promise<number>;
  report(options: ReportOptions, out: Out): Promise<number>;
}

/** The process's output streams. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: Io = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
};

/** The verbs as the agent runs them, on this process's environment; each makes its S3 client when it is called. */
export const processVerbs: VerbHandlers = {
  run: (command) => runCommand(command, process.env, process.cwd()),
  doctor: (options, out) => doctorCommand(options, process.env, createS3Client(), out),
  ls: (options, out) => lsCommand(options, process.env, createS3Client(), out),
  inspect: (options, out) => inspectCommand(options, process.env, createS3Client(), out),
  prune: (options, out) => pruneCommand(options, process.env, createS3Client(), out),
  report: (options, out) => reportCommand(options, process.env, createS3Client(), out),
};

function perform(call: VerbRun, verbs: VerbHandlers, out: Out): Promise<number> {
  switch (call.verb) {
    case 'run':
      return verbs.run(call.command);
    case 'doctor':
      return verbs.doctor(call.options, out);
    case 'ls':
      return verbs.ls(call.options, out);
    case 'inspect':
      return verbs.inspect(call.options, out);
    case 'prune':
      return verbs.prune(call.options, out);
    case 'report':
      return verbs.report(call.options, out);
  }
}

/**
 * Runs the command line and returns the exit code: 0 for help and version, 64 for a command line that cannot be
 * used (named, with the verb's usage), else the verb's own. A verb other than `run` that fails exits with 1; `run`
 * passes the task's code on, and its own failures are the entry's (exit 70).
 */
export async function main(argv: readonly string[], verbs: VerbHandlers = processVerbs, io: Io = processIo): Promise<number> {
  const line = parseCommandLine(argv);
  switch (line.kind) {
    case 'help':
      io.stdout(line.text);
      return VerbExitCode.ok;
    case 'version':
      io.stdout(`spotsnap ${AGENT_VERSION}\n`);
      return VerbExitCode.ok;
    case 'refused':
      io.stderr(`${line.message}\n${line.usage}`);
      return ExitCode.usage;
  }
  const { call } = line;
  const out: Out = (text) => io.stdout(`${text}\n`);
  if (call.verb === 'run') return perform(call, verbs, out);
  try {
    return await perform(call, verbs, out);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`spotsnap ${call.verb}: ${error.message}\n${verbUsage(verbNamed(call.verb)!)}`);
      return ExitCode.usage;
    }
    io.stderr(`spotsnap ${call.verb}: ${error instanceof Error ? error.message : String(error)}\n`);
    return VerbExitCode.failed;
  }
}
