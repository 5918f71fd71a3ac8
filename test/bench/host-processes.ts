// The host benchmark's processes: started with their output kept and waited on, timed, measured from /proc, and killed with all they started.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, type WriteStream } from 'node:fs';

/** A process whose stdout and stderr are kept, and whose output can be waited on. */
export class LoggedProcess {
  readonly child: ChildProcess;
  /** Wall-clock time (ms since the epoch) just before it was started. */
  readonly startedAt = Date.now();
  stdout = '';
  stderr = '';
  /** Its exit code (or signal), once it exited and its output was read to the end. */
  exit: string | undefined;
  private readonly listeners = new Set<() => void>();
  private readonly log: WriteStream | undefined;

  /** `fd3`: a descriptor the process gets as its fd 3 (a file for a task's output, which CRIU can dump where it cannot a pipe). */
  /** `logFile`: where its output is also written as it comes, for the record. */
  constructor(command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; fd3?: number; logFile?: string }) {
    const stdio: Array<'ignore' | 'pipe' | number> = ['ignore', 'pipe', 'pipe'];
    if (options.fd3 !== undefined) stdio.push(options.fd3);
    this.child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio });
    this.log = options.logFile === undefined ? undefined : createWriteStream(options.logFile);
    this.child.stdout!.setEncoding('utf8').on('data', (text: string) => this.add('stdout', text));
    this.child.stderr!.setEncoding('utf8').on('data', (text: string) => this.add('stderr', text));
    this.child.on('error', (error) => this.ended(`could not start: ${error.message}`));
    // 'close', not 'exit': by then all it wrote has been read.
    this.child.on('close', (code, signal) => this.ended(signal ?? `code ${code}`));
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`bench: ${String(this.child.spawnfile)} did not start (${this.exit ?? 'no pid'})`);
    return this.child.pid;
  }

  /** Resolves once `pattern` matches what it wrote (stdout or stderr); see waitUntil. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<void> {
    return this.waitUntil(() => pattern.test(this.stdout) || pattern.test(this.stderr), String(pattern), timeoutMs);
  }

  /**
   * Resolves once `holds()` is true, checked whenever it writes; rejects, with the end of its output, if it exits
   * first or `timeoutMs` pass.
   */
  waitUntil(holds: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (holds()) done(undefined);
        else if (this.exit !== undefined) done(`it exited (${this.exit})`);
      };
      const timer = setTimeout(() => done(`${timeoutMs} ms passed`), timeoutMs);
      const done = (failure: string | undefined): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        if (failure === undefined) resolve();
        else reject(new Error(`bench: waited for ${what} from ${String(this.child.spawnfile)}, but ${failure}; its last output:\n${this.tail()}`));
      };
      this.listeners.add(check);
      check();
    });
  }

  /** The last lines of its output, for an error. */
  tail(lines = 20): string {
    return `${this.stdout}\n${this.stderr}`.trim().split('\n').slice(-lines).join('\n');
  }

  private add(stream: 'stdout' | 'stderr', text: string): void {
    this[stream] += text;
    this.log?.write(text);
    for (const listener of [...this.listeners]) listener();
  }

  private ended(how: string): void {
    this.exit ??= how;
    this.log?.end();
    for (const listener of [...this.listeners]) listener();
  }
}

/** The host PIDs of every process under `pid` (children first found through /proc/PID/task/TID/children). */
export function descendants(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number): void => {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${parent}/task`);
    } catch {
      return;
    }
    for (const tid of tids) {
      let children = '';
      try {
        children = readFileSync(`/proc/${parent}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const child of children.split(' ').filter(Boolean).map(Number)) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

/** Kills `pid` and everything under it with SIGKILL, and resolves once none of them is left (reaped or a zombie of a dead parent). */
export async function killTree(pid: number): Promise<void> {
  const all = [pid, ...descendants(pid)];
  for (const p of all) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  const alive = (p: number): boolean => {
    try {
      return !/^State:\s+Z/m.test(readFileSync(`/proc/${p}/status`, 'utf8'));
    } catch {
      return false;
    }
  };
  for (let waited = 0; all.some(alive); waited += 50) {
    if (waited > 30_000) throw new Error(`bench: processes ${all.filter(alive).join(', ')} outlived SIGKILL for 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The peak RSS (VmHWM) of a process, in bytes. */
export function peakRssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  if (kib === undefined) throw new Error(`bench: /proc/${pid}/status has no VmHWM line`);
  return Number(kib) * 1024;
}

/** Runs a command to its end and returns how long it took, in ms; throws with its output if it fails. */
export async function timedRun(command: string, args: readonly string[], cwd: string): Promise<number> {
  const run = new LoggedProcess(command, args, { cwd, env: process.env });
  const started = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    run.child.on('close', (c) => resolve(c));
    run.child.on('error', () => resolve(null));
  });
  const ms = Math.round(performance.now() - started);
  if (code !== 0) throw new Error(`bench: ${command} ${args.join(' ')} failed (${run.exit}):\n${run.tail()}`);
  return ms;
}

/** Resolves once `file` holds text matching `pattern` (a task's ready line, when its output goes to a file CRIU can dump). */
export async function waitForFileText(file: string, pattern: RegExp, timeoutMs: number): Promise<void> {
  for (let waited = 0; ; waited += 100) {
    if (existsSync(file) && pattern.test(readFileSync(file, 'utf8'))) return;
    if (waited > timeoutMs) throw new Error(`bench: ${file} did not show ${pattern} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
