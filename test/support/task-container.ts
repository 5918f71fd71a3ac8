// Runs the spotsnap task image as one attempt of a job: to completion, or until its checkpoint commits and the "instance" dies.
import { execa } from 'execa';
import { GenericContainer, StartupCheckStrategy, Wait, type StartedTestContainer, type StartupStatus } from 'testcontainers';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { agentLog, eventLine } from './agent-log.ts';

export const TASK_IMAGE = 'spotsnap:dev';

/** Ends the start-up wait as soon as the container has stopped, whatever its exit code. */
class ContainerEndedStrategy extends StartupCheckStrategy {
  override async checkStartupState(dockerClient: unknown, containerId: string): Promise<StartupStatus> {
    const client = dockerClient as { getContainer(id: string): { inspect(): Promise<{ State: { Running: boolean; Status: string } }> } };
    const { State } = await client.getContainer(containerId).inspect();
    return State.Running || State.Status === 'created' ? 'PENDING' : 'SUCCESS';
  }
}

export interface AttemptOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export {
  type AgentLine,
  agentEvent,
  agentEvents,
  agentLog,
  checkpointEventLine,
  committedCheckpoints,
  eventLine,
  FRESH_START_EVENTS,
} from './agent-log.ts';

function taskContainer(
  command: readonly string[],
  env: Record<string, string>,
  tmpfs?: Record<string, string>,
  entrypoint?: string[],
  image: string = TASK_IMAGE,
): GenericContainer {
  // The options CRIU needs in a container on these machines (docker/README.md explains each).
  const container = new GenericContainer(image);
  if (entrypoint) container.withEntrypoint(entrypoint);
  return container
    .withNetworkMode('host')
    .withAddedCapabilities('ALL')
    .withDroppedCapabilities('SYS_RESOURCE')
    .withSecurityOpt('seccomp=unconfined', 'apparmor=unconfined')
    .withEnvironment(env)
    .withTmpFs(tmpfs ?? {})
    .withCommand([...command]);
}

async function collect(container: StartedTestContainer): Promise<AttemptOutput> {
  const id = container.getId();
  const logs = await execa('docker', ['logs', id], { stripFinalNewline: false, reject: false });
  const inspect = await execa('docker', ['inspect', '--format', '{{.State.ExitCode}}', id]);
  return { exitCode: Number(inspect.stdout.trim()), stdout: logs.stdout, stderr: logs.stderr };
}

/** Runs one attempt until the container exits (with another entrypoint than `spotsnap run --` if given). */
export async function runToCompletion(
  command: readonly string[],
  env: Record<string, string>,
  timeoutMs = 120_000,
  entrypoint?: string[],
  image: string = TASK_IMAGE,
): Promise<AttemptOutput> {
  const container = await taskContainer(command, env, undefined, entrypoint, image)
    .withWaitStrategy(new ContainerEndedStrategy())
    .withStartupTimeout(timeoutMs)
    .start();
  try {
    return await collect(container);
  } finally {
    await container.stop({ remove: true, timeout: 0 });
  }
}

/** What the agent logs once a final checkpoint is committed and the attempt's report stored (the report's outcome is `checkpointed`). */
export const CHECKPOINTED_FOR_NEXT_ATTEMPT = /"event":"attempt\.reported".*"outcome":"checkpointed"/;

/**
 * Runs one attempt (with tmpfs mounts, path to mount options, if given) until the agent has checkpointed for the
 * next attempt (or logs `until`), then kills the container with SIGKILL, as the reclaim of the instance would, and returns what it printed.
 */
export async function runUntilCheckpoint(
  command: readonly string[],
  env: Record<string, string>,
  until: RegExp = CHECKPOINTED_FOR_NEXT_ATTEMPT,
  timeoutMs = 120_000,
  image: string = TASK_IMAGE,
  tmpfs?: Record<string, string>,
): Promise<AttemptOutput> {
  const container = await taskContainer(command, env, tmpfs, undefined, image).start();
  try {
    await waitForLogWhileRunning(container, until, timeoutMs);
    await execa('docker', ['kill', '--signal', 'KILL', container.getId()], { reject: false });
    return await collect(container);
  } finally {
    await container.stop({ remove: true, timeout: 0 });
  }
}

/**
 * Waits for a line matching `pattern` while the container runs; if it ends or the time is up first, fails with
 * the agent's warnings and errors, so that a red test says what the agent saw.
 */
async function waitForLogWhileRunning(container: StartedTestContainer, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stdout, stderr } = await execa('docker', ['logs', container.getId()], { reject: false });
    if (pattern.test(stdout) || pattern.test(stderr)) return;
    const running = (await execa('docker', ['inspect', '--format', '{{.State.Running}}', container.getId()], { reject: false })).stdout.trim() === 'true';
    if (!running || Date.now() > deadline) {
      const troubles = agentLog(stderr)
        .filter((l) => l.level === 'warn' || l.level === 'error')
        .map((l) => JSON.stringify(l))
        .join('\n');
      throw new Error(
        `no log line matched ${pattern} ${running ? `within ${timeoutMs} ms` : 'before the container ended'}; the agent's warnings and errors:\n${troubles}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Runs one attempt until its checkpoint is committed, with the notice given (by `notify`) once the task printed
 * a line matching `started`: it is then interrupted mid-run, however long it took to start.
 */
export async function runUntilCheckpointOnceStarted(
  command: readonly string[],
  env: Record<string, string>,
  started: RegExp,
  notify: () => void,
  image: string = TASK_IMAGE,
  timeoutMs = 120_000,
  tmpfs?: Record<string, string>,
): Promise<AttemptOutput> {
  const container = await taskContainer(command, env, tmpfs, undefined, image).start();
  try {
    await waitForLogWhileRunning(container, started, timeoutMs);
    notify();
    await waitForLogWhileRunning(container, CHECKPOINTED_FOR_NEXT_ATTEMPT, timeoutMs);
    await execa('docker', ['kill', '--signal', 'KILL', container.getId()], { reject: false });
    return await collect(container);
  } finally {
    await container.stop({ remove: true, timeout: 0 });
  }
}

/** `count` step lines of docker/sample-tasks/memory-task.py in one attempt's output: that much of the task ran in it. */
export function memoryTaskSteps(count: number): RegExp {
  return new RegExp(`(?:^step \\d+/\\d+ [0-9a-f]+\\n){${count}}`, 'm');
}

/** Sends a signal to the container's main process (the agent), as `docker stop` would. */
export async function signalContainer(container: StartedTestContainer, signal: string): Promise<void> {
  await execa('docker', ['kill', '--signal', signal, container.getId()]);
}

/** Sends `signal` to the agent, waits for the container to end, and returns what the attempt printed. */
export async function signalAndCollect(container: StartedTestContainer, signal: string, timeoutMs = 60_000): Promise<AttemptOutput> {
  await signalContainer(container, signal);
  await waitForExit(container, timeoutMs);
  return collect(container);
}

/** Starts an attempt and returns once the container runs (its output is read later with `collect`). */
export async function startAttempt(command: readonly string[], env: Record<string, string>, tmpfs?: Record<string, string>): Promise<StartedTestContainer> {
  return taskContainer(command, env, tmpfs)
    .withWaitStrategy(Wait.forLogMessage(new RegExp(`${eventLine(LogEvent.attemptStarted).source}|task started`)))
    .start();
}

/** Polls the container's log until a line matches. */
export async function waitForLog(container: StartedTestContainer, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { stdout, stderr } = await execa('docker', ['logs', container.getId()], { reject: false });
    if (pattern.test(stdout) || pattern.test(stderr)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no log line matched ${pattern} within ${timeoutMs} ms`);
}

/** Runs one attempt to completion with tmpfs mounts (path to mount options), e.g. a small disk for images. */
export async function runToCompletionWithTmpfs(command: readonly string[], env: Record<string, string>, tmpfs: Record<string, string>): Promise<AttemptOutput> {
  const container = await taskContainer(command, env, tmpfs).withWaitStrategy(new ContainerEndedStrategy()).withStartupTimeout(120_000).start();
  try {
    return await collect(container);
  } finally {
    await container.stop({ remove: true, timeout: 0 });
  }
}

/** Files to put into a container before it starts (testcontainers' content to copy: `mode` for an executable). */
export type PreparedFile = { content: string; target: string; mode?: number };

/** Runs one attempt to completion in a container prepared with files and tmpfs mounts of its own. */
export async function runPrepared(
  command: readonly string[],
  env: Record<string, string>,
  prepare: { files?: PreparedFile[]; tmpfs?: Record<string, string> },
  image: string = TASK_IMAGE,
): Promise<AttemptOutput> {
  const started = await taskContainer(command, env, prepare.tmpfs, undefined, image)
    .withCopyContentToContainer(prepare.files ?? [])
    .start();
  try {
    await waitForExit(started, 120_000);
    return await collect(started);
  } finally {
    await started.stop({ remove: true, timeout: 0 });
  }
}

/** Waits until the container has exited. */
export async function waitForExit(container: StartedTestContainer, timeoutMs = 60_000): Promise<void> {
  await execa('docker', ['wait', container.getId()], { timeout: timeoutMs });
}

export { taskContainer, collect };
