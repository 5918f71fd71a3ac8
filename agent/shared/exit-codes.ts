// The agent's own exit codes, in one place; README "Exit codes" is generated from the comments here.

/** Every exit code the agent can produce besides the task's own code. */
export const ExitCode = {
  /** The command line was wrong (`spotsnap run` without `-- CMD`, unknown command). */
  usage: 64,
  /** The agent itself failed unexpectedly (a bug: please report it with the log). */
  internalError: 70,
  /** The task's command could not be executed (not executable). Same meaning as in a shell. */
  commandNotExecutable: 126,
  /** The task's command was not found. Same meaning as in a shell. */
  commandNotFound: 127,
  /** A checkpoint failed and the task could not go on (the same code Fusion Snapshots uses). */
  checkpointFailed: 175,
  /** Restoring a committed snapshot failed and SPOTSNAP_ON_RESTORE_FAILURE=fail (the same code Fusion Snapshots uses). */
  restoreFailed: 176,
  /** A checkpoint was committed and SPOTSNAP_AFTER_CHECKPOINT=exit: the next attempt resumes the task. */
  checkpointedForRetry: 177,
  /** The configuration was invalid and SPOTSNAP_STRICT=true: the task was not started. */
  configInvalid: 178,
} as const;

export type AgentExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit code a shell reports for a process killed by a signal: 128 + the signal's number. */
export function exitCodeForSignal(signalNumber: number): number {
  return 128 + signalNumber;
}
