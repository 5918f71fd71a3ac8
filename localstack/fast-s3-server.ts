// A fast S3 stand-in for measurements: several processes serving one directory of objects (on tmpfs) so the server is not the ceiling.
//
// The in-process stand-in (s3-stand-in.ts) keeps objects in memory and shares the test's one core; moto runs on
// one core too. Here each process listens on the same port with SO_REUSEPORT (the kernel spreads connections
// over them), keeps each object as a file under `dir/<bucket>/`, streams bodies to and from those files, and
// renames a finished PUT into place, so any process reads any object whole. What it serves: fast-s3-handler.ts.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkBucketName } from './fast-s3-keys.ts';
import type { WorkerMessage } from './fast-s3-worker.ts';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fast-s3-worker.ts');

export interface FastS3Options {
  /** The directory that holds the buckets (created if missing); on tmpfs (/dev/shm/...) for measurements. */
  dir: string;
  /** How many server processes share the port (default 1). */
  workers?: number;
  /** The port on 127.0.0.1 (default 0: a free one). */
  port?: number;
  /** Buckets to create before the first request (kept if they exist). */
  buckets?: readonly string[];
  /**
   * The Node each process runs on (default this process's). The task image's bundle runs its Node under a
   * loader of its own, so a stand-in started with the bundle's Node names the bundle's `bin/node` wrapper.
   */
  execPath?: string;
  /**
   * Drop the bytes of every object PUT with more than this many (each still checked against the checksums
   * it came with): its key lists and answers HEAD with its size, and a GET of it answers 501. For a measurement
   * of checkpoints bigger than the machine's memory could hold beside their task (default: keep everything).
   */
  discardOver?: number;
}

export interface FastS3 {
  /** `http://127.0.0.1:PORT`, path-style. */
  endpoint: string;
  port: number;
  /** Ends every server process; the directory and its objects are left as they are. */
  stop(): Promise<void>;
}

/**
 * glibc malloc settings for the stand-in's processes. Node's HTTP parser copies every piece of a body (64 KiB)
 * into a buffer of its own, freed a moment later; with glibc's defaults the heap is trimmed back after each
 * such burst and every new buffer faults its pages in again. Kept for reuse instead, the stand-in took about a
 * quarter less CPU per GiB received (`npm run bench:pipeline`, 1 GiB: 2676 perf samples of it against 3497,
 * its page faults 83 against 410): CPU that, on a machine of few cores, it would take from the agent measured.
 */
const HEAP_KEPT_FOR_REUSE = {
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: String(8 << 20),
  MALLOC_TRIM_THRESHOLD_: String(64 << 20),
  MALLOC_TOP_PAD_: String(16 << 20),
} as const;

function startWorker(dir: string, port: number, execPath: string | undefined, discardOver: number | undefined): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    // Node 22.18+ runs .ts files as they are; no flag of the parent (a test runner's) is passed on.
    const discard = discardOver === undefined ? [] : ['--discard-over', String(discardOver)];
    const child = fork(WORKER, ['--dir', dir, '--port', String(port), ...discard], {
      execArgv: ['--disable-warning=ExperimentalWarning'],
      ...(execPath ? { execPath } : {}),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...HEAP_KEPT_FOR_REUSE },
    });
    const onExit = (code: number | null, signal: string | null) =>
      reject(new Error(`a fast S3 stand-in process exited (${signal ?? `code ${code}`}) before it listened on 127.0.0.1:${port}`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.once('message', (message: WorkerMessage) => {
      child.off('exit', onExit);
      if ('failed' in message) reject(new Error(`the fast S3 stand-in ${message.failed}`));
      else resolve({ child, port: message.listening });
    });
  });
}

function stopWorker(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Starts the stand-in's processes on 127.0.0.1 and resolves once every one accepts connections. */
export async function startFastS3(options: FastS3Options): Promise<FastS3> {
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) throw new Error(`fast S3 stand-in: workers must be an integer from 1 to 256, not ${workers}`);
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`fast S3 stand-in: port must be 0-65535, not ${port}`);
  const discard = options.discardOver;
  if (discard !== undefined && (!Number.isSafeInteger(discard) || discard < 0))
    throw new Error(`fast S3 stand-in: discardOver must be a whole number of bytes, 0 or more, not ${discard}`);
  const dir = path.resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  if (!statSync(dir).isDirectory()) throw new Error(`fast S3 stand-in: ${dir} is not a directory; name a directory for its buckets`);
  for (const bucket of options.buckets ?? []) {
    checkBucketName(bucket);
    mkdirSync(path.join(dir, bucket), { recursive: true });
  }
  const children: ChildProcess[] = [];
  const stop = async () => void (await Promise.all(children.map(stopWorker)));
  try {
    // The first process picks the port (when asked for any); the others join it.
    const first = await startWorker(dir, port, options.execPath, options.discardOver);
    children.push(first.child);
    const rest = await Promise.allSettled(Array.from({ length: workers - 1 }, () => startWorker(dir, first.port, options.execPath, options.discardOver)));
    for (const r of rest) if (r.status === 'fulfilled') children.push(r.value.child);
    const failed = rest.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    return { endpoint: `http://127.0.0.1:${first.port}`, port: first.port, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
