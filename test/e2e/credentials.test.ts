// End to end: a restored task's container credentials come from the new attempt (identity B), not the old ECS task.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CredentialsStandIn, testIdentity } from '../../localstack/credentials-stand-in.ts';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import { useStandIns } from '../support/stand-ins.ts';
import {
  agentEvents,
  CHECKPOINTED_FOR_NEXT_ATTEMPT,
  collect,
  runToCompletion,
  signalContainer,
  startAttempt,
  waitForLog,
  type AttemptOutput,
} from '../support/task-container.ts';

const { s3Endpoint, bucket, imds } = useStandIns({ bucket: 'e2e-credentials' });
// The ECS container credentials endpoint of each attempt's instance: its own token, its own role session.
const standIn = new CredentialsStandIn({ identity: testIdentity('A'), token: 'ecs-token-of-attempt-1' });
const script = readFileSync(new URL('../tasks/credentials-task.py', import.meta.url), 'utf8');
// Passed inline, so that the task image needs no extra file: 60 steps of 0.1 s between the two fetches.
const command = ['python3', '-c', script, '60', '0.1'];

beforeAll(() => standIn.start());
afterAll(() => standIn.stop());
beforeEach(() => {
  standIn.setIdentity(testIdentity('A'));
  standIn.requireToken('ecs-token-of-attempt-1');
});

function env(jobId: string, attempt: number): Record<string, string> {
  return {
    ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt }),
    AWS_CONTAINER_CREDENTIALS_FULL_URI: standIn.fullUri,
    AWS_CONTAINER_AUTHORIZATION_TOKEN: `ecs-token-of-attempt-${attempt}`,
  };
}

/** Runs attempt 1 until the task has its first credentials, then posts the notice and waits for the commit. */
async function interruptAfterFirstFetch(jobId: string): Promise<AttemptOutput> {
  const container = await startAttempt(command, env(jobId, 1));
  try {
    await waitForLog(container, /^credentials at start: /m);
    imds.scheduleNotice(0);
    await waitForLog(container, CHECKPOINTED_FOR_NEXT_ATTEMPT);
    // The instance is reclaimed.
    await signalContainer(container, 'KILL');
    return await collect(container);
  } finally {
    // The next instance has no notice.
    imds.clearNotice();
    await container.stop({ remove: true, timeout: 0 });
  }
}

describe('container credentials through the agent', () => {
  it("launches the task with the agent's loopback relay as its credentials endpoint", async () => {
    const run = await runToCompletion(command, env(`credentials-${randomUUID()}`, 1));
    expect(run.exitCode).toBe(0);
    const endpoint = /^credentials endpoint: (.*)$/m.exec(run.stdout)?.[1];
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
    expect(endpoint).not.toBe(standIn.fullUri);
    expect(run.stdout).toMatch(/^credentials at start: ASIASTANDINA$/m);
    expect(run.stdout).toMatch(/^credentials at end: ASIASTANDINA$/m);
  });

  it("a restored task gets the new attempt's identity, not the old ECS task's", async () => {
    const jobId = `credentials-${randomUUID()}`;
    const first = await interruptAfterFirstFetch(jobId);
    expect(first.stdout).toMatch(/^credentials at start: ASIASTANDINA$/m);
    expect(first.stdout).not.toMatch(/credentials at end/);

    // The next instance: another role session behind another token; attempt 1's token is refused there.
    standIn.setIdentity(testIdentity('B'));
    standIn.requireToken('ecs-token-of-attempt-2');
    const second = await runToCompletion(command, env(jobId, 2));
    expect(agentEvents(second.stderr)).toContain(LogEvent.restoreDone);
    // Restored, not restarted: the start lines were printed once, in attempt 1.
    expect(second.stdout).not.toMatch(/task started/);
    expect(second.stdout).toMatch(/^credentials at end: ASIASTANDINB$/m);
    expect(second.exitCode).toBe(0);
  });
});
