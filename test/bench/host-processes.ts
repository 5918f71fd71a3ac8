// The host benchmark's processes: started with their output kept and waited on, timed, measured from /proc, and killed with all they started.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import { childPids, signalQuietly, statusBytes } from '../../agent/task/process-tree.ts';

/**
 * Every process this run started (and the roots of trees started for it), until it is known to be gone: what
 * killEverythingStarted() kills at the end, whatever happened. A process is dropped once it was reaped.
 */
const started = new Set<number>();

/** Counts `pid` (and what it starts) among what killEverythingStarted() ends. */
export function track(pid: number): void {
  started.add(pid);
}

/** Kills every tree this run started that may still be running: after a failure as after a normal end. */
export async function killEverythingStarted(): Promise<void> {
  for (const pid of [...started]) await killTree(pid);
}

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
    if (this.child.pid !== undefined) track(this.child.pid);
    this.child.stdout!.setEncoding('utf8').on('data', (text: string) => this.add('stdout', text));
    this.child.stderr!.setEncoding('utf8').on('data', (text: string) => this.add('stderr', text));
    this.child.on('error', (error) => this.ended(`could not start: ${error.message}`));
    // 'close', not 'exit': by then all it wrote has been read.
    this.child.on('close', (code, signal) => {
      // Gone and reaped: its PID may be another process's soon, never to be killed as this one's.
      if (this.child.pid !== undefined) started.delete(this.child.pid);
      this.ended(signal ?? `code ${code}`);
    });
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

  /** Its stderr up to the last whole line (a line may come in two pieces). */
  get stderrLines(): string {
    return this.stderr.slice(0, this.stderr.lastIndexOf('\n') + 1);
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

/**
 * Kills `pid` and everything under it, and resolves once none of them is left (reaped, or a zombie of a dead
 * parent). The tree is stopped first, then looked at again until nothing new appears, so that a child forked
 * meanwhile (the agent starting CRIU) is not missed; then all of it gets SIGKILL.
 */
export async function killTree(pid: number): Promise<void> {
  const all = new Set<number>();
  for (let found = [pid]; found.length > 0; ) {
    for (const p of found) {
      all.add(p);
      signalQuietly(p, 'SIGSTOP');
    }
    found = [...all].flatMap((p) => childPids(p)).filter((p) => !all.has(p));
  }
  for (const p of all) signalQuietly(p, 'SIGKILL');
  const alive = (p: number): boolean => {
    try {
      return !/^State:\s+Z/m.test(readFileSync(`/proc/${p}/status`, 'utf8'));
    } catch {
      return false;
    }
  };
  for (let waited = 0; [...all].some(alive); waited += 50) {
    if (waited > 30_000) throw new Error(`bench: processes ${[...all].filter(alive).join(', ')} outlived SIGKILL for 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  started.delete(pid);
}

/** The peak RSS (VmHWM) of a process, in bytes. */
export function peakRssOf(pid: number): number {
  const bytes = statusBytes(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmHWM');
  if (bytes === 0) throw new Error(`bench: /proc/${pid}/status has no VmHWM line`);
  return bytes;
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

/**
 * Resolves once `file` holds text matching `pattern` (a task's ready line, when its output goes to a file CRIU
 * can dump); rejects once `writer` ended without it, or after `timeoutMs`.
 */
export async function waitForFileText(file: string, pattern: RegExp, writer: LoggedProcess, timeoutMs: number): Promise<void> {
  for (let waited = 0; ; waited += 100) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (pattern.test(text)) return;
    if (writer.exit !== undefined)
      throw new Error(`bench: ${file} never showed ${pattern}: its writer ended (${writer.exit}); it holds:\n${text.slice(-2000)}`);
    if (waited > timeoutMs) throw new Error(`bench: ${file} did not show ${pattern} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
