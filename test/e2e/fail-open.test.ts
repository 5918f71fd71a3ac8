// End to end: spotsnap never makes a task fail: disabled it is transparent, misconfigured it fails open.
import { randomUUID } from 'node:crypto';
import { Wait } from 'testcontainers';
import { describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.ts';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import { agentEvent, agentEvents, runToCompletion, signalAndCollect, taskContainer } from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { s3Endpoint, bucket, imds } = useStandIns({ bucket: 'e2e-fail-open' });
const env = (overrides: Record<string, string> = {}, attempt = 1) => ({
  ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId: `open-${randomUUID()}`, attempt }),
  ...overrides,
});

const exits42 = ['sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 42'];
const trapsTerm = ['sh', '-c', 'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.1; done'];

async function runAndSignal(envVars: Record<string, string>, signal: string) {
  const container = await taskContainer(trapsTerm, envVars).withWaitStrategy(Wait.forLogMessage('ready')).start();
  try {
    return await signalAndCollect(container, signal);
  } finally {
    await container.stop({ remove: true, timeout: 0 });
  }
}

describe('spotsnap disabled', () => {
  it('passes output and exit code through unchanged', async () => {
    const result = await runToCompletion(exits42, {});
    expect(result).toEqual({ exitCode: 42, stdout: 'to-stdout\n', stderr: 'to-stderr\n' });
  });

  it('passes SIGTERM on to the task', async () => {
    const result = await runAndSignal({}, 'TERM');
    expect(result.stdout).toBe('ready\ngot TERM\n');
    expect(result.exitCode).toBe(3);
  });

  it("reports a missing command with the shell's code 127", async () => {
    const result = await runToCompletion(['no-such-command-here'], {});
    expect(result.exitCode).toBe(127);
  });
});

describe('spotsnap enabled, no notice', () => {
  it('passes output and exit code through', async () => {
    const result = await runToCompletion(exits42, env());
    expect(result.exitCode).toBe(42);
    expect(result.stdout).toBe('to-stdout\n');
    expect(result.stderr).toContain('to-stderr\n');
  });

  it('passes SIGTERM on to the task and takes no checkpoint', async () => {
    const result = await runAndSignal(env(), 'TERM');
    expect(result.stdout).toBe('ready\ngot TERM\n');
    expect(result.exitCode).toBe(3);
    expect(agentEvents(result.stderr)).not.toContain(LogEvent.checkpointCommitted);
  });

  it('starts from scratch on attempt 2 when the job has no snapshot', async () => {
    const result = await runToCompletion(['sh', '-c', 'echo fresh run'], env({}, 2));
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe('fresh run\n');
    const start = agentEvent(result.stderr, LogEvent.taskFreshStart);
    expect(start?.reasons).toEqual([expect.stringMatching(/^no committed snapshot for job open-/)]);
  });
});

describe('a checkpoint that cannot reach S3', () => {
  it('lets the frozen task run on and finish with its own output and exit code', async () => {
    const command = ['sh', '/opt/spotsnap/samples/append-task.sh', '60', '0.05'];
    const uninterrupted = await runToCompletion(command, {});
    const closedPort = await freePort();
    imds.scheduleNotice(0);
    try {
      const result = await runToCompletion(command, env({ AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${closedPort}` }));
      expect(agentEvents(result.stderr)).toContain(LogEvent.checkpointAborted);
      expect(agentEvents(result.stderr)).toEqual(expect.arrayContaining([LogEvent.checkpointFailed, LogEvent.taskContinued]));
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toBe(uninterrupted.stdout);
    } finally {
      imds.clearNotice();
    }
  });
});

describe('bad configuration', () => {
  const bad = { SPOTSNAP_S3_URI: 'http://not-an-s3-uri', SPOTSNAP_POLL_INTERVAL_MS: 'soon', SPOTSNAP_TCP_MODE: 'sometimes' };

  it('is reported by name and value, and the task still runs (fail open)', async () => {
    const result = await runToCompletion(exits42, env(bad));
    expect(result.exitCode).toBe(42);
    expect(result.stdout).toBe('to-stdout\n');
    const report = agentEvent(result.stderr, LogEvent.configInvalid);
    expect(report?.msg).toMatch(/^invalid configuration; the task runs without snapshots/);
    expect(report?.msg).toContain('SPOTSNAP_S3_URI="http://not-an-s3-uri": expected s3://BUCKET/PREFIX');
    expect(report?.msg).toContain('SPOTSNAP_POLL_INTERVAL_MS="soon": expected a whole number of milliseconds');
    expect(report?.msg).toContain('SPOTSNAP_TCP_MODE="sometimes": expected established or close');
  });

  it('stops the task from starting with code 178 under SPOTSNAP_STRICT=true', async () => {
    const result = await runToCompletion(exits42, env({ ...bad, SPOTSNAP_STRICT: 'true' }));
    expect(result.exitCode).toBe(178);
    expect(result.stdout).toBe('');
    expect(agentEvents(result.stderr)).toContain(LogEvent.taskNotStarted);
  });

  it('runs the task without snapshots when CRIU is missing', async () => {
    const result = await runToCompletion(exits42, env({ SPOTSNAP_CRIU: '/no/such/criu' }));
    expect(result.exitCode).toBe(42);
    expect(result.stdout).toBe('to-stdout\n');
    expect(agentEvents(result.stderr)).toContain(LogEvent.criuUnusable);
  });
});
