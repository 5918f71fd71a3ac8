// The `spotsnap` command line: `spotsnap run -- CMD [ARGS...]`, `spotsnap version`.
import { ExitCode } from './exit-codes.ts';
import { runCommand } from './run-command.ts';
import { AGENT_VERSION } from './version.ts';

const USAGE = `usage: spotsnap run -- CMD [ARGS...]
       spotsnap version

Runs CMD as a task that survives spot interruptions when SPOTSNAP_ENABLED=true.
Configuration, exit codes and the S3 layout: see README.md.`;

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
