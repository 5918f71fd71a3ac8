// The benchmark's task containers: started as spotsnap's are, timed from inside, and the raw CRIU baseline's task.
import { execa } from 'execa';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { TASK_IMAGE } from '../support/task-container.ts';
import { availableMemoryBytes } from './available-memory.ts';
import type { MemoryKind } from './bench-results.ts';

/** The bench task: holds `mib` MiB of memory of a kind, prints ready, rewrites 10% of it when change-now appears (docker/sample-tasks/bench-task.py). */
export const TASK = (mib: number, kind: MemoryKind = 'random') => ['python3', '/opt/spotsnap/samples/bench-task.py', String(mib), kind];
// A cap, not an allocation: an 8 GiB task's images and the memory warmed beside them before a plain restore.
const TMPFS = { '/tmpfs': 'rw,size=32g' };

/** A task container with the options CRIU needs (docker/README.md) and a tmpfs for images. */
export function container(command: string[], env: Record<string, string> = {}, entrypoint?: string[]): GenericContainer {
  const c = new GenericContainer(TASK_IMAGE)
    .withNetworkMode('host')
    .withAddedCapabilities('ALL')
    .withDroppedCapabilities('SYS_RESOURCE')
    .withSecurityOpt('seccomp=unconfined', 'apparmor=unconfined')
    .withTmpFs(TMPFS)
    .withEnvironment(env)
    .withCommand(command)
    .withStartupTimeout(300_000);
  return entrypoint ? c.withEntrypoint(entrypoint) : c;
}

/** A task container that only sleeps, for commands run in it with `docker exec`. */
export function idleContainer(): Promise<StartedTestContainer> {
  return container(['infinity'], {}, ['sleep']).withWaitStrategy(Wait.forSuccessfulCommand('true')).start();
}

/** Runs a shell command in the container and returns how long the command itself took (timed inside). */
export async function timedExec(c: StartedTestContainer, script: string): Promise<number> {
  const out = await execa('docker', [
    'exec',
    c.getId(),
    'sh',
    '-c',
    `s=$(date +%s%N); ${script} >/tmp/exec.log 2>&1 || { cat /tmp/exec.log >&2; exit 1; }; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))`,
  ]);
  return Number(out.stdout.trim().split('\n').pop());
}

/** The peak RSS (VmHWM) of the container's PID 1, the agent, in bytes. */
export async function peakRss(c: StartedTestContainer): Promise<number> {
  const out = await execa('docker', ['exec', c.getId(), 'grep', 'VmHWM', '/proc/1/status']);
  return Number(/(\d+)/.exec(out.stdout)![1]) * 1024;
}

/**
 * Starts the bench task without the agent, but as the agent would (init of its own PID namespace, session
 * leader), and waits until its memory is filled. Returns the host PID of the namespace init, to dump.
 */
export async function startRawTask(mib: number, kind: MemoryKind = 'random'): Promise<{ c: StartedTestContainer; pid: number }> {
  const c = await idleContainer();
  const script = `echo $$ > /tmp/unshare.pid; exec unshare --pid --fork setsid ${TASK(mib, kind).join(' ')} </dev/null >/tmp/task.log 2>&1`;
  await execa('docker', ['exec', '-d', '-w', '/tmp', c.getId(), 'sh', '-c', script]);
  for (;;) {
    const log = await execa('docker', ['exec', c.getId(), 'sh', '-c', 'cat /tmp/task.log; cat /proc/$(cat /tmp/unshare.pid)/task/*/children'], {
      reject: false,
    });
    const pid = /^\s*(\d+)\s*$/m.exec(log.stdout.split('\n').slice(1).join('\n'))?.[1];
    if (/^ready/m.test(log.stdout) && pid) return { c, pid: Number(pid) };
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Touches most of the machine's free memory once, in a throwaway container, before anything is measured.
 * On a VM whose memory the hypervisor backs lazily, the first touch of a guest page costs several times a
 * later one (measured here: 5.7 s to fill 2 GiB the first time, 0.9-1.3 s after); without this, whichever
 * stage first lands on never-used memory (a restore, more often than not) pays for it, whatever the software.
 */
export async function warmGuestMemory(): Promise<void> {
  const mib = Math.max(0, Math.min(Math.floor(availableMemoryBytes() / 1048576) - 4096, 16384));
  if (mib === 0) return;
  const started = performance.now();
  await execa('docker', ['run', '--rm', '--network', 'host', '--entrypoint', 'python3', TASK_IMAGE, '-c', `x = b"\\1" * (${mib} << 20)`]);
  console.log(`warmed ${mib} MiB of guest memory in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}
