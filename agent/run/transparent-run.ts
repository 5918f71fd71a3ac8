// Runs the task as a plain child when spotsnap is off: same output, same exit code, signals passed on.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Logger } from 'pino';
import { ExitCode, exitCodeForSignal } from '../shared/exit-codes.ts';
import { LogEvent } from '../shared/log-events.ts';
import { onForwardedSignals } from '../task/forwarded-signals.ts';
import { taskEnvironment } from '../task/task-environment.ts';

export async function runTransparently(command: readonly string[], log: Logger): Promise<number> {
  const [file, ...args] = command;
  const child = spawn(file!, args, { stdio: 'inherit', env: taskEnvironment(process.env) });
  const removeHandlers = onForwardedSignals((signal) => child.kill(signal));
  try {
    return await new Promise<number>((resolve) => {
      child.once('error', (error: NodeJS.ErrnoException) => {
        const notFound = error.code === 'ENOENT';
        log.error(
          { event: notFound ? LogEvent.taskNotFound : LogEvent.taskNotExecutable, command: file, err: error.message },
          notFound ? 'command not found' : 'command could not be executed',
        );
        resolve(notFound ? ExitCode.commandNotFound : ExitCode.commandNotExecutable);
      });
      child.once('exit', (code, signal) => resolve(signal ? exitCodeForSignal(constants.signals[signal]) : (code ?? 1)));
    });
  } finally {
    removeHandlers();
  }
}
