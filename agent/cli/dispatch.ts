// The `spotsnap` command line: `spotsnap run -- CMD [ARGS...]`, `spotsnap version`.
import { UsageError } from './command-args.ts';
import { doctorCommand } from './doctor-command.ts';
import { inspectCommand } from './inspect-command.ts';
import { lsCommand } from './ls-command.ts';
import { pruneCommand } from './prune-command.ts';
import { reportCommand } from './report-command.ts';
import { ExitCode } from '../shared/exit-codes.ts';
import { createS3Client } from '../store/snapshot-store.ts';
import { runCommand } from '../run/run-command.ts';
import { AGENT_VERSION } from '../shared/version.ts';

const USAGE = `usage: spotsnap run -- CMD [ARGS...]
       spotsnap doctor
       spotsnap ls [--job ID] [--s3 s3://BUCKET/PREFIX] [--json]
       spotsnap inspect JOB [SNAPSHOT] [--s3 s3://BUCKET/PREFIX] [--json]
       spotsnap prune [--older-than 7d] [--dry-run] [--s3 s3://BUCKET/PREFIX]
       spotsnap report [s3://BUCKET/PREFIX] [--json] [--svg FILE]
       spotsnap version

run: runs CMD as a task that survives spot interruptions when SPOTSNAP_ENABLED=true.
doctor: checks that a checkpoint can work here. ls, inspect, prune, report: the snapshots and reports under the prefix
(--s3, else SPOTSNAP_S3_URI). Configuration, exit codes and the S3 layout: see docs/reference.md.`;

/** Runs a snapshot command, turning a usage mistake into its message and code 64, and any other failure into 1. */
async function snapshotCommand(run: (out: (line: string) => void) => Promise<number>): Promise<number> {
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  try {
    return await run(out);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`spotsnap: ${error.message}\n`);
      return ExitCode.usage;
    }
    process.stderr.write(`spotsnap: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

/** Splits `run [--] CMD...`; returns undefined when no command is given. */
export function commandOf(args: readonly string[]): string[] | undefined {
  const rest = args[0] === '--' ? args.slice(1) : [...args];
  return rest.length > 0 && rest[0] !== '' ? rest : undefined;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [verb, ...args] = argv;
  switch (verb) {
    case 'run': {
      const command = commandOf(args);
      if (!command) {
        process.stderr.write(`spotsnap run: no command given\n${USAGE}\n`);
        return ExitCode.usage;
      }
      return runCommand(command, process.env, process.cwd());
    }
    case 'doctor':
      return snapshotCommand((out) => doctorCommand(process.env, createS3Client(), out));
    case 'ls':
      return snapshotCommand((out) => lsCommand(args, process.env, createS3Client(), out));
    case 'inspect':
      return snapshotCommand((out) => inspectCommand(args, process.env, createS3Client(), out));
    case 'prune':
      return snapshotCommand((out) => pruneCommand(args, process.env, createS3Client(), out));
    case 'report':
      return snapshotCommand((out) => reportCommand(args, process.env, createS3Client(), out));
    case 'version':
    case '--version':
      process.stdout.write(`spotsnap ${AGENT_VERSION}\n`);
      return 0;
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return 0;
    default:
      process.stderr.write(`spotsnap: unknown command ${JSON.stringify(verb ?? '')}\n${USAGE}\n`);
      return ExitCode.usage;
  }
}
