// Runs the `criu` CLI (version, checks, dump, foreground restore) with CRIU's own error lines attached to failures.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { OnReadOpts, Socket } from 'node:net';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { baselineDumpArgs, baselineRestoreArgs, dumpArgs, restoreArgs, type CriuDumpOptions, type CriuRestoreOptions } from './criu-options.ts';
import { pageServerSocketPair } from './page-server-socket.ts';

/** CRIU's version as text and as one comparable number (major*10000 + minor*100 + sub). */
export interface CriuVersion {
  text: string;
  number: number;
}

/** What `criu check` said: its exit code (undefined when it could not run) and the lines of its output that start with "Error". */
export interface CriuCheckResult {
  exitCode: number | undefined;
  errors: string[];
}

/** A CRIU command that failed, carrying what CRIU said about why. */
export class CriuError extends Error {
  readonly exitCode: number | undefined;
  readonly logExcerpt: string;
  constructor(message: string, exitCode: number | undefined, logExcerpt: string) {
    super(logExcerpt ? `${message}\n${logExcerpt}` : message);
    this.name = 'CriuError';
    this.exitCode = exitCode;
    this.logExcerpt = logExcerpt;
  }
}

/** Parses `criu --version` output ("Version: 4.1.1"). */
export function parseCriuVersion(output: string): CriuVersion | undefined {
  const match = /Version:\s*(\d+)\.(\d+)(?:\.(\d+))?/.exec(output);
  if (!match) return undefined;
  const [major, minor, sub] = [Number(match[1]), Number(match[2]), Number(match[3] ?? 0)];
  return { text: `${major}.${minor}.${sub}`, number: major * 10000 + minor * 100 + sub };
}

/**
 * The "Error" lines of a CRIU log with a little context before each, at most `maxLines` lines,
 * so that a failure message says what CRIU said.
 */
export function errorExcerpt(log: string, maxLines = 20, context = 2): string {
  const lines = log.split('\n');
  const keep = new Set<number>();
  lines.forEach((line, i) => {
    if (/\bError\b|\berror\b/.test(line)) {
      for (let j = Math.max(0, i - context); j <= i; j++) keep.add(j);
    }
  });
  const picked = [...keep].sort((a, b) => a - b).map((i) => lines[i]!);
  const tail = picked.length > 0 ? picked : lines.filter((l) => l.trim() !== '').slice(-5);
  return tail.slice(-maxLines).join('\n');
}

async function readLogExcerpt(imagesDir: string, logFile: string, stderr: string): Promise<string> {
  const log = await readFile(path.join(imagesDir, logFile), 'utf8').catch(() => '');
  return errorExcerpt(`${log}\n${stderr}`.trim());
}

/** What serves a dump's pages: the reader of its socket (net.Socket's `onread`), and what serves the socket once CRIU holds the other end. */
export interface PageServer<T> {
  onread: OnReadOpts;
  serve(socket: Socket): Promise<T>;
}

/**
 * The descriptor of `criu dump`'s page-server socket (`--ps-socket`): its standard input. CRIU reads the
 * socket blocking, and the agent's socket is non-blocking (a flag the two descriptors share): Node's spawn
 * makes a child's descriptors 0-2 blocking again, and no other.
 */
const PAGE_SERVER_FD = 0;

/** The criu binary and the version it reports. */
export class CriuCli {
  readonly binary: string;
  constructor(binary = 'criu') {
    this.binary = binary;
  }

  /** Runs `criu --version`; rejects with a CriuError naming the binary when it is missing or unusable. */
  async version(): Promise<CriuVersion> {
    const result = await execa(this.binary, ['--version'], { reject: false, timeout: 10_000 });
    const version = result.exitCode === 0 ? parseCriuVersion(result.stdout) : undefined;
    if (!version) {
      const why = result.failed && result.exitCode === undefined ? result.shortMessage : result.stderr || result.stdout;
      throw new CriuError(`"${this.binary} --version" failed: is CRIU 4.x installed?`, result.exitCode, String(why).trim());
    }
    return version;
  }

  /** Whether `criu check --feature NAME` passes on this kernel (e.g. mem_dirty_track for pre-dumps). */
  async hasFeature(name: string): Promise<boolean> {
    const result = await execa(this.binary, ['check', '--feature', name], { reject: false, timeout: 20_000 });
    return result.exitCode === 0;
  }

  /** Runs `criu check`: whether the kernel and this process's permissions support checkpoint/restore, and what fails. */
  async check(): Promise<CriuCheckResult> {
    const result = await execa(this.binary, ['check'], { reject: false, all: true, timeout: 30_000 });
    return { exitCode: result.exitCode, errors: (result.all ?? '').split('\n').filter((l) => /^Error/.test(l)) };
  }

  /** Runs `criu dump` and resolves when the images are complete. */
  async dump(options: CriuDumpOptions): Promise<void> {
    const result = await execa(this.binary, dumpArgs(options), { reject: false, stdin: 'ignore' });
    if (result.exitCode !== 0) {
      const excerpt = await readLogExcerpt(options.imagesDir, options.logFile, String(result.stderr));
      throw new CriuError(`criu dump of PID ${options.pid} failed (exit ${result.exitCode})`, result.exitCode, excerpt);
    }
  }

  /**
   * Runs `criu dump --page-server` with its page-server socket on descriptor 0, one end of a socket pair whose
   * other end, read through `server.onread`, `server.serve` is given: CRIU's other images go to `imagesDir`, its
   * pages only to the server. Resolves with what `serve` resolved to once both are done; rejects with CRIU's
   * failure if the dump failed (whatever the server saw then), else with the server's.
   */
  async dumpToPageServer<T>(options: CriuDumpOptions, server: PageServer<T>): Promise<T> {
    const args = dumpArgs({ ...options, pageServerFd: PAGE_SERVER_FD });
    // The socket's private directory goes beside the images, not among them (they are all uploaded).
    const { agent: socket, criu } = await pageServerSocketPair(path.dirname(options.imagesDir), server.onread);
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(this.binary, args, { stdio: [criu, 'ignore', 'pipe'] });
    } catch (error) {
      socket.destroy();
      throw error;
    } finally {
      // The child holds its own copy of CRIU's end; this one would keep the socket open after CRIU exits.
      criu.destroy();
    }
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (text: string) => {
      if (stderr.length < 64 << 10) stderr += text;
    });
    const exited = new Promise<number | undefined>((resolve) => {
      child.once('error', (error) => {
        stderr += `${error.message}\n`;
        resolve(undefined);
      });
      // 'exit', not 'close': the socket may be left unread once CLOSE is answered.
      child.once('exit', (code) => resolve(code ?? undefined));
    });
    const served = server.serve(socket).then(
      (value) => ({ value }),
      (error: unknown) => {
        // CRIU may be blocked writing pages: a closed socket makes its dump fail instead of waiting for ever.
        socket.destroy();
        return { error: error ?? new Error('the page server failed') };
      },
    );
    const exitCode = await exited;
    // CRIU is gone: whatever the server still waits for will not come.
    socket.destroy();
    const outcome = await served;
    if (exitCode !== 0) {
      const excerpt = await readLogExcerpt(options.imagesDir, options.logFile, stderr);
      // When the agent's side stopped first, that is why CRIU could not write its pages: say so first.
      const server =
        'error' in outcome ? `; the page server had stopped: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}` : '';
      throw new CriuError(`criu dump of PID ${options.pid} failed (exit ${exitCode})${server}`, exitCode, excerpt);
    }
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  }

  /**
   * Starts `criu restore` in the foreground. `inheritedFds[i]` is passed to criu as descriptor 3+i,
   * which is what `options.inheritFds` must name. The returned process ends when the restored tree does.
   */
  startRestore(options: CriuRestoreOptions, inheritedFds: readonly number[]): ResultPromise<{ reject: false; stdio: ['ignore', 'pipe', 'pipe'] }> {
    // execa passes integer descriptors through to the child as they are; its types only list them for 0-2.
    const stdio = ['ignore', 'pipe', 'pipe', ...inheritedFds] as unknown as ['ignore', 'pipe', 'pipe'];
    return execa(this.binary, restoreArgs(options), { reject: false, stdio });
  }

  /** What CRIU logged about a failed restore. */
  async restoreFailure(options: CriuRestoreOptions, stderr: string): Promise<string> {
    return readLogExcerpt(options.imagesDir, options.logFile, stderr);
  }

  /**
   * The command line of a `criu dump` with CRIU's own defaults and none of spotsnap's options, to run elsewhere
   * (the benchmark's raw baseline, in a container): the tree is killed once dumped.
   */
  baselineDumpCommand(pid: number, imagesDir: string, logFile: string): string[] {
    return [this.binary, ...baselineDumpArgs(pid, imagesDir, logFile)];
  }

  /** The command line of a detached `criu restore` with CRIU's own defaults (the benchmark's raw baseline). */
  baselineRestoreCommand(imagesDir: string, logFile: string): string[] {
    return [this.binary, ...baselineRestoreArgs(imagesDir, logFile)];
  }
}
