// Creates real anonymous pipes (not the socketpairs Node gives children), which CRIU can re-attach with --inherit-fd.
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { signalQuietly } from './process-tree.ts';

/** Both ends of a kernel pipe, as descriptors of this process. */
export interface OsPipe {
  readFd: number;
  writeFd: number;
  /** The pipe's identity as /proc shows it and CRIU records it, e.g. `pipe:[12345]`. */
  key: string;
}

/**
 * Node cannot call pipe(2). A shell can: for each pipe a helper `sleep` is started with a pipe as its
 * stdin, and both ends are reopened through /proc/PID/fd/0, which gives this process its own
 * descriptors of that same pipe. The helpers are then killed. The write end is blocking, as a task expects.
 */
export async function createOsPipes(count: number): Promise<OsPipe[]> {
  const script = `i=0; while [ $i -lt ${count} ]; do : | sh -c 'echo $$; exec sleep 600' & i=$((i+1)); done; wait`;
  const helper = spawn('/bin/sh', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const pids: number[] = [];
  try {
    const lines = createInterface({ input: helper.stdout! });
    for await (const line of lines) {
      pids.push(Number(line.trim()));
      if (pids.length === count) break;
    }
    if (pids.length !== count) throw new Error(`pipe helper printed ${pids.length} of ${count} PIDs`);
    return pids.map((pid) => {
      const link = `/proc/${pid}/fd/0`;
      const writeFd = openSync(link, constants.O_WRONLY);
      const readFd = openSync(link, constants.O_RDONLY | constants.O_NONBLOCK);
      return { readFd, writeFd, key: readlinkSync(`/proc/self/fd/${writeFd}`) };
    });
  } finally {
    // Kill the helpers' sleeps first: their shell reaps them and exits, and Node reaps the shell, so no
    // zombie is left behind when the agent is the container's PID 1.
    for (const pid of pids) signalQuietly(pid, 'SIGKILL');
    if (pids.length < count) signalQuietly(-helper.pid!, 'SIGKILL');
    helper.stdout?.destroy();
  }
}

/** Closes a descriptor, ignoring one that is already closed. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
