// Entry point of the bundled agent: runs main() and exits with its code.
import { ExitCode } from '../shared/exit-codes.ts';
import { main } from './dispatch.ts';

let finished = false;
// If the event loop drains before main() settles, something awaited forever lost its last handle: exiting 0
// would report success for a task that did not finish, so exit with the internal-error code instead.
process.on('beforeExit', () => {
  if (!finished) {
    process.stderr.write('spotsnap: internal error: the agent stopped waiting before the task finished\n');
    process.exit(ExitCode.internalError);
  }
});

main(process.argv.slice(2)).then(
  (code) => {
    finished = true;
    process.exit(code);
  },
  (error: unknown) => {
    finished = true;
    process.stderr.write(`spotsnap: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(ExitCode.internalError);
  },
);
