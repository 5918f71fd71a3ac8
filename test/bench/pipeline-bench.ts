// Measures the agent's side of a checkpoint, and with --restore of a streamed restore, without CRIU or containers: distinct random pages from a page-server stream through the workers to the fast S3 stand-in, and back into a pipe, with the CPU of each thread.
//
// `npm run bench:pipeline [-- --size MIB] [--workers N] [--no-compress] [--restore]`: the stream comes from a
// child process (as CRIU's would) on the same kind of socket pair a dump uses; the stand-in runs in processes
// of its own. With --restore, the pages image it stored is then fed as a restore feeds CRIU (ranged reads, each
// chunk checked on a worker, written in order) into a FIFO that `dd` reads, in place of `criu restore --stream`.
// It prints one JSON line: wall seconds, the agent's CPU-seconds per GiB (every thread) and the CPU of each of
// its threads, for each side, so that a change to the pipeline can be judged in a minute, before the full
// benchmark (`npm run bench`).
import { spawn, spawnSync } from 'node:child_process';
import { openSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PageChunkSink } from '../../agent/checkpoint/page-chunks.ts';
import { DirectPageReceiver } from '../../agent/checkpoint/page-receiver.ts';
import { chunkImageFeed } from '../../agent/restore/image-feed.ts';
import { readsInFlight } from '../../agent/restore/chunk-downloader.ts';
import { isStreamedImage } from '../../agent/restore/restore.ts';
import type { ImageFile } from '../../agent/store/manifest.ts';
import { createS3Client, SnapshotStore } from '../../agent/store/snapshot-store.ts';
import { ChunkUploader } from '../../agent/transfer/chunk-uploader.ts';
import { ChunkWorkers } from '../../agent/transfer/chunk-workers.ts';
import { usableCores } from '../../agent/transfer/worker-count.ts';
import { pageServerSocketPair } from '../../criu-bridge/page-server-socket.ts';
import { startFastS3 } from '../../localstack/fast-s3-server.ts';

const USAGE = 'usage: npm run bench:pipeline [-- --size MIB] [--workers N] [--no-compress] [--restore]';

function fail(message: string): never {
  console.error(`pipeline-bench: ${message}\n${USAGE}`);
  process.exit(64);
}

const OPTIONS = { size: { type: 'string' }, workers: { type: 'string' }, 'no-compress': { type: 'boolean' }, restore: { type: 'boolean' } } as const;
let args: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>;
try {
  args = parseArgs({
    options: OPTIONS,
    strict: true,
    allowPositionals: false,
  });
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}

/** A whole number >= 1 given as --NAME, or `fallback`. */
function count(name: 'size' | 'workers', fallback: number): number {
  const text = args.values[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) fail(`--${name} needs a whole number >= 1, not ${JSON.stringify(text)}`);
  return value;
}

/** CPU-seconds of each thread of this process so far, by "tid name". */
function threadSeconds(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    out.set(`${tid} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}`, ticks / 100);
  }
  return out;
}

interface Measured {
  wallS: number;
  cpuSecondsPerGiB: number;
  userS: number;
  systemS: number;
  threads: Array<{ thread: string; cpuS: number }>;
}

/** Runs `work` and measures it: wall seconds, this process's CPU per GiB of `mib`, and each thread's CPU that moved. */
async function measure(mib: number, work: () => Promise<void>): Promise<Measured> {
  const threadsBefore = threadSeconds();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await work();
  const wallS = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const threads = [...threadSeconds()]
    .map(([name, s]) => ({ thread: name, cpuS: Number((s - (threadsBefore.get(name) ?? 0)).toFixed(2)) }))
    .filter((t) => t.cpuS >= 0.02);
  return {
    wallS: Number(wallS.toFixed(2)),
    cpuSecondsPerGiB: Number(((((cpu.user + cpu.system) / 1e6) * 1024) / mib).toFixed(2)),
    userS: Number((cpu.user / 1e6).toFixed(2)),
    systemS: Number((cpu.system / 1e6).toFixed(2)),
    threads,
  };
}

/**
 * Feeds `image` from S3 as a streamed restore feeds CRIU (image-feed.ts), into a FIFO that `dd` reads and
 * drops, written through a non-blocking socket as the image server writes CRIU's pipe.
 */
async function feedIntoPipe(store: SnapshotStore, image: ImageFile, workers: ChunkWorkers, scratch: string): Promise<void> {
  const fifo = path.join(scratch, 'pages.fifo');
  const made = spawnSync('mkfifo', [fifo]);
  if (made.status !== 0) throw new Error(`mkfifo ${fifo} failed: ${made.stderr}`);
  const reader = spawn('dd', [`if=${fifo}`, 'of=/dev/null', 'bs=1M', 'status=none'], { stdio: 'inherit' });
  const readerExited = new Promise<number | null>((resolve) => reader.on('exit', resolve));
  // Opening for writing waits for dd (already started) to open its end; the socket makes it non-blocking.
  const pipe = new Socket({ fd: openSync(fifo, 'w'), readable: false, writable: true });
  const feed = chunkImageFeed(store, image, { readsAhead: readsInFlight('auto', image.bytes), workers });
  await feed(
    (bytes) => new Promise<void>((resolve, reject) => pipe.write(bytes, (error) => (error ? reject(error) : resolve()))),
    new AbortController().signal,
  );
  await new Promise<void>((resolve) => pipe.end(resolve));
  const code = await readerExited;
  if (code !== 0) throw new Error(`dd reading the restore's pipe exited with ${code}`);
}

const sizeMiB = count('size', 1024);
const workerCount = count('workers', usableCores());
const compress = !args.values['no-compress'];
// The stand-in's objects on tmpfs, so that the disk is not what is measured.
const dir = path.join('/dev/shm', `pipeline-bench-${process.pid}`);
const s3 = await startFastS3({ dir, workers: Math.max(1, os.availableParallelism() - 1), buckets: ['bench'] });
try {
  Object.assign(process.env, { AWS_ENDPOINT_URL_S3: s3.endpoint, AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_REGION: 'us-east-1' });
  const store = new SnapshotStore(createS3Client(), { bucket: 'bench', prefix: 'pipeline' }, 'job');
  const workers = new ChunkWorkers(workerCount);
  // Started and loaded before the measurement, as the agent starts them when the task starts.
  workers.warm();
  await Promise.all(Array.from({ length: workerCount }, (_, i) => workers.encode(Buffer.alloc(4096, i), false)));
  const uploader = new ChunkUploader(store, new Map(), 4, { workers, compress });
  const sink = new PageChunkSink(uploader);
  const receiver = new DirectPageReceiver(sink);
  const { agent, criu } = await pageServerSocketPair(os.tmpdir(), receiver.onread);
  const writer = spawn(process.execPath, [new URL('./page-stream-writer.ts', import.meta.url).pathname, String(sizeMiB)], {
    stdio: [criu, 'inherit', 'inherit'],
  });
  criu.destroy();
  let files: ImageFile[] = [];
  const checkpoint = await measure(sizeMiB, async () => {
    const images = await receiver.serve(agent);
    files = await sink.imageFiles(images, uploader);
    await uploader.drain();
  });
  agent.destroy();
  writer.kill();
  const pages = files.find(isStreamedImage);
  if (args.values.restore && !pages) throw new Error('the checkpoint stored no pages image to restore');
  const restore = args.values.restore && pages ? await measure(sizeMiB, () => feedIntoPipe(store, pages, workers, dir)) : undefined;
  console.log(
    JSON.stringify({
      sizeMiB,
      workers: workerCount,
      compress,
      ...checkpoint,
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      storedMiB: Math.round(uploader.transfer.storedBytes / 2 ** 20),
      ...(restore ? { restore } : {}),
    }),
  );
  await workers.close();
} finally {
  await s3.stop();
  await rm(dir, { recursive: true, force: true });
}
