// End to end: CRIU's own zdtm static tests, in batches, each interrupted by a spot notice and resumed in a fresh container.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Wait } from 'testcontainers';
import { describe, expect, it } from 'vitest';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import {
  agentEvent,
  agentEvents,
  agentLog,
  CHECKPOINTED_FOR_NEXT_ATTEMPT,
  collect,
  eventLine,
  FRESH_START_EVENTS,
  runPrepared,
  taskContainer,
  waitForExit,
  waitForLog,
  type AttemptOutput,
} from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { s3Endpoint, bucket, imds } = useStandIns({ bucket: 'e2e-zdtm' });

/** The zdtm tests built from Debian's criu source package, with test/zdtm/run-batch.sh (test/images/zdtm.Dockerfile). */
const IMAGE = 'spotsnap-zdtm:dev';
/** The file that tells run-batch.sh to stop its tests: only a later attempt's fresh container has it. */
const STOP_FILE = '/etc/spotsnap-test/zdtm-stop';
/** Tests run at once in one task: few containers, and a few minutes for the whole list. */
const BATCH_SIZE = 12;

interface ZdtmTest {
  name: string;
  /** How the test is started (nofile, file, dir, dirfile, special), maybe after `fails:` or `fallback:`; or skip. */
  how: string;
  /** The state it checks, or why it is left out. */
  text: string;
}

/** Reads test/zdtm/tests.txt: `name | how | text` lines, `#` comments. */
function readTestList(): ZdtmTest[] {
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../zdtm/tests.txt');
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
    .map((line) => {
      const [name, how, text] = line.split(' | ').map((f) => f.trim());
      if (!name || !how || !text) throw new Error(`${file}: a line is not "name | how | text": ${JSON.stringify(line)}`);
      return { name, how, text };
    });
}

const tests = readTestList();
const runnable = tests.filter((t) => !/^(skip|\w+:)/.test(t.how));
const batches = Array.from({ length: Math.ceil(runnable.length / BATCH_SIZE) }, (_, i) => runnable.slice(i * BATCH_SIZE, (i + 1) * BATCH_SIZE));

const env = (jobId: string, attempt: number, extra: Record<string, string> = {}) => ({
  ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt }),
  ...extra,
});
const command = (batch: readonly ZdtmTest[]) => ['/opt/zdtm/run-batch.sh', ...batch.map((t) => `${t.name}:${t.how.replace(/^\w+:/, '')}`)];

/** Each test's result as run-batch.sh prints it (`zdtm NAME: PASS` or `FAIL`). */
function results(stdout: string): Record<string, string> {
  return Object.fromEntries([...stdout.matchAll(/^zdtm (\S+): (PASS|FAIL)$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** Attempt 1: the tests set their state up; a notice comes once all are ready; the container dies after the commit. */
async function firstAttempt(batch: readonly ZdtmTest[], jobId: string, extra: Record<string, string>): Promise<AttemptOutput> {
  const container = await taskContainer(command(batch), env(jobId, 1, extra), undefined, undefined, IMAGE)
    .withWaitStrategy(Wait.forLogMessage(/^zdtm batch ready$/m))
    .withStartupTimeout(60_000)
    .start();
  try {
    imds.scheduleNotice(0);
    await waitForLog(container, new RegExp(`${CHECKPOINTED_FOR_NEXT_ATTEMPT.source}|${eventLine(LogEvent.checkpointFailed).source}`), 90_000);
    await execa('docker', ['kill', '--signal', 'KILL', container.getId()], { reject: false });
    return await collect(container);
  } finally {
    imds.clearNotice();
    await container.stop({ remove: true, timeout: 0 });
  }
}

/** Attempt 2, in a fresh container that has the stop file: restored, the tests are stopped and report. */
async function secondAttempt(batch: readonly ZdtmTest[], jobId: string, extra: Record<string, string>): Promise<AttemptOutput> {
  return runPrepared(command(batch), env(jobId, 2, extra), { files: [{ content: 'stop\n', target: STOP_FILE }] }, IMAGE);
}

/** Runs one batch through both attempts and checks that every test passed after its restore, not started again. */
async function interruptAndResume(batch: readonly ZdtmTest[], extra: Record<string, string> = {}): Promise<void> {
  const jobId = `zdtm-${randomUUID()}`;
  const first = await firstAttempt(batch, jobId, extra);
  // Every test started and set its state up; none was stopped or reported before the checkpoint.
  expect(first.stdout).not.toMatch(/did not start/);
  expect(results(first.stdout)).toEqual({});
  const failed = agentEvent(first.stderr, LogEvent.checkpointFailed);
  expect(failed?.err, 'the checkpoint failed').toBeUndefined();
  expect(agentEvents(first.stderr)).toContain(LogEvent.checkpointCommitted);

  const second = await secondAttempt(batch, jobId, extra);
  const log = agentLog(second.stderr);
  const events = log.map((l) => l.event);
  const refused = log.find((l) => l.event === LogEvent.restoreSnapshotFailed);
  expect(refused?.err, 'the restore failed').toBeUndefined();
  expect(events).toContain(LogEvent.restoreDone);
  for (const fresh of FRESH_START_EVENTS) expect(events).not.toContain(fresh);
  // Not started again: the batch's start line is only in the first attempt.
  expect(second.stdout).not.toMatch(/zdtm batch started/);
  expect({ results: results(second.stdout), output: second.stdout }).toEqual({
    results: Object.fromEntries(batch.map((t) => [t.name, 'PASS'])),
    output: expect.stringMatching(`zdtm batch done: ${batch.length} passed, 0 failed`),
  });
  expect(second.exitCode).toBe(0);
}

describe("CRIU's zdtm static tests pass through spotsnap", () => {
  it('lists at least 40 tests to run, and a reason for each one left out', () => {
    expect(runnable.length).toBeGreaterThanOrEqual(40);
    expect(new Set(tests.map((t) => t.name)).size).toBe(tests.length);
    for (const t of tests) expect(t.how).toMatch(/^(skip|((fails|fallback):)?(nofile|file|dir|dirfile|special))$/);
  });

  for (const [i, batch] of batches.entries()) {
    it(
      `batch ${i + 1} (${batch.map((t) => t.name).join(' ')}): each test reports PASS after its restore in a fresh container`,
      () => interruptAndResume(batch),
      240_000,
    );
  }
});

describe('a zdtm test whose state CRIU cannot checkpoint here falls back cleanly', () => {
  const fallbacks = tests.filter((t) => t.how.startsWith('fallback:'));

  it.each(fallbacks)('$name: the checkpoint fails, the task runs on and its test still passes', async (test) => {
    const container = await taskContainer(command([test]), env(`zdtm-fallback-${randomUUID()}`, 1), undefined, undefined, IMAGE)
      .withWaitStrategy(Wait.forLogMessage(/^zdtm batch ready$/m))
      .withStartupTimeout(60_000)
      .start();
    let result: AttemptOutput;
    try {
      imds.scheduleNotice(0);
      await waitForLog(container, new RegExp(`${eventLine(LogEvent.taskContinued).source}|${eventLine(LogEvent.checkpointCommitted).source}`), 90_000);
      imds.clearNotice();
      // The instance stayed after all: the test is stopped where it ran, with the state it set up before the notice.
      await execa('docker', ['exec', container.getId(), 'sh', '-c', `mkdir -p ${path.dirname(STOP_FILE)} && echo stop > ${STOP_FILE}`]);
      await waitForExit(container, 120_000);
      result = await collect(container);
    } finally {
      imds.clearNotice();
      await container.stop({ remove: true, timeout: 0 });
    }
    expect(agentEvents(result.stderr)).not.toContain(LogEvent.checkpointCommitted);
    expect(agentEvents(result.stderr)).toContain(LogEvent.taskContinued);
    expect(String(agentEvent(result.stderr, LogEvent.checkpointFailed)?.err)).toMatch(/criu dump of PID \d+ failed/);
    expect(result.stdout).toMatch(new RegExp(`^zdtm ${test.name}: PASS$`, 'm'));
    expect(result.exitCode).toBe(0);
  });
});
