// End to end: task shapes that pipelines run every day, each interrupted by a spot notice and resumed in a fresh container.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import { agentEvent, agentEvents, agentLog, FRESH_START_EVENTS, runToCompletion, runUntilCheckpointOnceStarted } from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { s3Endpoint, bucket, imds } = useStandIns({ bucket: 'e2e-pipeline-shapes' });

/** The test images built from test/images by docker/build-images.sh, with the task programs of test/tasks. */
const PY_IMAGE = 'spotsnap-py:dev';
const JVM_IMAGE = 'spotsnap-jvm:dev';
const TASKS = '/opt/spotsnap-tests';
const INPUT_BYTES = 200 * 1024 * 1024;

interface Shape {
  name: string;
  image: string;
  command: string[];
  /** A line only the end of the task prints. */
  finished: RegExp;
}

// Each runs about 6 to 10 s uninterrupted; the notice comes about a third of the way in. SPOTSNAP_PATHS is
// unset (the working directory /work), so that the files each keeps elsewhere matter.
const shapes: Shape[] = [
  {
    name: 'a JVM with worker threads and ~300 MiB of heap (default GC, perf data in /tmp/hsperfdata_root)',
    image: JVM_IMAGE,
    command: ['java', '-Xmx512m', '-cp', `${TASKS}/java`, 'HeapTask', '288', '40', '150', '4'],
    finished: /^final [0-9a-f]{64}$/m,
  },
  {
    name: 'a JVM thread pool reading gzip records and piping results to a gzip child (ProcessBuilder)',
    image: JVM_IMAGE,
    command: ['java', '-Xmx256m', '-cp', `${TASKS}/java`, 'PoolTask', '160000', '4000', '100', '4'],
    finished: /^final [0-9a-f]{64}$/m,
  },
  {
    name: 'GNU sort with a 1 MiB buffer in a pipeline, spilling sorted runs to /tmp',
    image: PY_IMAGE,
    command: ['sh', `${TASKS}/sort-spill.sh`, '400000', '0.15'],
    finished: /^sort done: sha256 [0-9a-f]{64}$/m,
  },
  {
    name: '64 MiB of scratch data in an unlinked temporary file (tempfile.TemporaryFile)',
    image: PY_IMAGE,
    command: ['python3', `${TASKS}/unlinked-scratch.py`, '64', '60', '0.1'],
    finished: /^final [0-9a-f]{64}$/m,
  },
  {
    name: 'a parent relaying the output of a multi-threaded child process',
    image: PY_IMAGE,
    command: ['python3', `${TASKS}/threaded-child.py`, '50', '0.12', '4'],
    finished: /^final child exited 0, relayed sha256 [0-9a-f]{64}$/m,
  },
  {
    name: 'a multiprocessing pool sharing memory in /dev/shm (multiprocessing.shared_memory)',
    image: PY_IMAGE,
    command: ['python3', `${TASKS}/shm-pool.py`, '32', '50', '0.12', '3'],
    finished: /^final [0-9a-f]{64}$/m,
  },
  {
    name: 'an SQLite database held open in WAL mode',
    image: PY_IMAGE,
    command: ['python3', `${TASKS}/sqlite-wal.py`, '50', '2000', '0.1'],
    finished: /^final [0-9a-f]{64}$/m,
  },
  {
    name: 'a file open for writing outside the working directory (/var/tmp)',
    image: PY_IMAGE,
    command: ['python3', `${TASKS}/outside-writer.py`, '/var/tmp/shape/out.log', '60', '0.1'],
    finished: /^final \d+ bytes, sha256 [0-9a-f]{64}$/m,
  },
  {
    name: "a task wrapped as Nextflow's AWS Batch launcher wraps one (traps, fifos and tee, /proc tracer, staging)",
    image: PY_IMAGE,
    command: ['bash', `${TASKS}/nextflow/launcher.sh`],
    finished: /^wrapper exited 0; published: [0-9a-f]{64}$/m,
  },
];

/** Read, never written: it comes with every container of the image, so the snapshot has no reason to carry it. */
const imageInput: Shape = {
  name: 'a 200 MiB input file that comes with the image, read a MiB at a time',
  image: PY_IMAGE,
  command: ['python3', `${TASKS}/image-input.py`, `${TASKS}/data/input.bin`, '0.03'],
  finished: /^final 209715200 bytes, sha256 [0-9a-f]{64}$/m,
};

/** The agent's warnings and errors of one attempt, to say why an assertion failed. */
function troubles(stderr: string): string {
  return agentLog(stderr)
    .filter((l) => ['warn', 'error', 'fatal'].includes(l.level))
    .map((l) => JSON.stringify(l))
    .join('\n');
}

async function interruptAndResume(shape: Shape) {
  const { image, command, finished } = shape;
  const uninterrupted = await runToCompletion(command, {}, 120_000, undefined, image);
  expect(uninterrupted.exitCode).toBe(0);
  expect(uninterrupted.stdout).toMatch(finished);

  const jobId = `shape-${randomUUID()}`;
  const env = (attempt: number) => jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt });
  // The notice comes once the task has started its work (a JVM takes a while to), so that it is interrupted mid-run.
  const first = await runUntilCheckpointOnceStarted(command, env(1), /^task started/m, () => imds.scheduleNotice(0), image);
  imds.clearNotice();
  // Interrupted mid-run: it had started and had not finished.
  expect(first.stdout).toMatch(/^task started/);
  expect(first.stdout, troubles(first.stderr)).not.toMatch(finished);

  const second = await runToCompletion(command, env(2), 120_000, undefined, image);
  const events = agentEvents(second.stderr);
  expect(events, troubles(second.stderr)).toContain(LogEvent.restoreDone);
  for (const fresh of FRESH_START_EVENTS) expect(events, troubles(second.stderr)).not.toContain(fresh);
  // It did not start over: the start line is printed once, in the first attempt.
  expect(second.stdout).not.toMatch(/task started/);
  expect(second.exitCode, troubles(second.stderr)).toBe(0);
  // Together the two attempts printed exactly what the uninterrupted run printed, final checksums included.
  expect(first.stdout + second.stdout).toBe(uninterrupted.stdout);
  return { first, second };
}

describe('task shapes of real pipelines resume after a spot notice, in a fresh container, as if never interrupted', () => {
  it.each(shapes)(
    '$name',
    async (shape) => {
      await interruptAndResume(shape);
    },
    300_000,
  );

  it('a 200 MiB input file that comes with the image is referenced, not uploaded', async () => {
    const { first } = await interruptAndResume(imageInput);
    const committed = agentEvent(first.stderr, LogEvent.checkpointCommitted);
    // The task's own memory is a few MiB; the input it reads is not sent with the snapshot.
    expect(committed?.uploadedBytes).toBeLessThan(INPUT_BYTES / 4);
  }, 300_000);
});
