// Test support for the credentials relay's tests: a container credentials stand-in, a captured log, relays closed after each test.
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { CredentialsStandIn, testIdentity } from '../../localstack/credentials-stand-in.ts';
import { startCredentialsRelay, type CredentialsRelay, type CredentialsRelayOptions } from './credentials-relay.ts';
import { ENV_FULL_URI, ENV_TOKEN } from './credentials-upstream.ts';

export const AGENT_TOKEN = 'token-of-the-agents-ecs-task';
export const standIn = new CredentialsStandIn({ identity: testIdentity('A'), token: AGENT_TOKEN });
export const logLines: string[] = [];
export const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
const relays: CredentialsRelay[] = [];

/** For a test file: starts the stand-in, gives it identity A and the agent's token before each test, closes the relays after each. */
export function useCredentialsStandIn(): void {
  beforeAll(async () => {
    await standIn.start();
  });
  afterAll(async () => {
    await standIn.stop();
  });
  beforeEach(() => {
    standIn.setIdentity(testIdentity('A'));
    standIn.requireToken(AGENT_TOKEN);
    standIn.requests.length = 0;
    logLines.length = 0;
  });
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.close()));
  });
}

/** The agent's environment with FULL_URI on the stand-in and `token`. */
export function fullUriEnv(token = AGENT_TOKEN): NodeJS.ProcessEnv {
  return { [ENV_FULL_URI]: standIn.fullUri, [ENV_TOKEN]: token };
}

/** Starts a relay on the stand-in (closed after the test). */
export async function start(options: Partial<CredentialsRelayOptions> = {}): Promise<CredentialsRelay> {
  const relay = await startCredentialsRelay({ agentEnv: fullUriEnv(), log, ...options });
  if (!relay) throw new Error('expected a relay');
  relays.push(relay);
  return relay;
}

/** What an SDK in the task does: GET its FULL_URI with its AUTHORIZATION_TOKEN. */
export async function fetchAsTask(
  env: NodeJS.ProcessEnv,
  token: string | null = env[ENV_TOKEN] ?? null,
): Promise<{ status: number; body: Record<string, unknown>; connection: string | null }> {
  const response = await fetch(env[ENV_FULL_URI]!, { headers: token === null ? {} : { authorization: token } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown>, connection: response.headers.get('connection') };
}

/** The AccessKeyId the relay serves the task; expects a 200. */
export async function accessKeyOf(relay: CredentialsRelay): Promise<unknown> {
  const { status, body } = await fetchAsTask(relay.taskEnv({}));
  expect(status).toBe(200);
  return body.AccessKeyId;
}
