// The task's credentials relay over one attempt: started for a fresh task, or on the port and token a restored task expects.
import type { Logger } from 'pino';
import { startCredentialsRelay, type CredentialsRelay } from '../task/credentials-relay.ts';
import type { Manifest } from '../store/manifest.ts';
import { LogEvent } from '../shared/log-events.ts';

/** Holds at most one relay for the attempt; the agent closes it when the attempt ends. */
export class TaskCredentials {
  private readonly agentEnv: NodeJS.ProcessEnv;
  private readonly log: Logger;
  private relay: CredentialsRelay | undefined;

  constructor(agentEnv: NodeJS.ProcessEnv, log: Logger) {
    this.agentEnv = agentEnv;
    this.log = log;
  }

  /**
   * Before a snapshot is restored: serves the relay its task was given, on that port with that token. Throws when it
   * cannot (the port is taken, or this container has no container credentials to serve), so that the restore falls
   * back rather than resume a task whose credentials would fail.
   */
  async serveFor(manifest: Manifest): Promise<void> {
    const wanted = manifest.credentialsRelay;
    if (!wanted) return;
    if (this.relay?.port === wanted.port && this.relay.token === wanted.token) return;
    await this.close();
    this.relay = await startCredentialsRelay({ agentEnv: this.agentEnv, listen: wanted, log: this.log });
    if (!this.relay) {
      throw new Error(
        "the snapshot's task reads its credentials from the agent, but this container has no container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI) to serve",
      );
    }
  }

  /** For a task started from scratch: the relay already serving (after a restore that fell back), or a new one. */
  async forFreshStart(): Promise<CredentialsRelay | undefined> {
    if (this.relay) return this.relay;
    this.relay = await startCredentialsRelay({ agentEnv: this.agentEnv, log: this.log }).catch((error: unknown) => {
      this.log.warn(
        { event: LogEvent.credentialsRelayNotStarted, err: error instanceof Error ? error.message : String(error) },
        'credentials relay not started: the task reads its credentials as the container gives them',
      );
      return undefined;
    });
    return this.relay;
  }

  async close(): Promise<void> {
    const relay = this.relay;
    this.relay = undefined;
    await relay?.close();
  }
}
