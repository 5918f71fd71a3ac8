// The signals the agent passes on to its task, and a helper that installs handlers for them.

/** What `docker stop`, `docker kill -s` and a terminal may send that a task should see. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/** Calls `handler` for each forwarded signal the agent receives; returns a function that removes the handlers. */
export function onForwardedSignals(handler: (signal: NodeJS.Signals) => void): () => void {
  for (const signal of FORWARDED_SIGNALS) process.on(signal, handler);
  return () => {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, handler);
  };
}
