// One process of the fast S3 stand-in: serves the directory it is given on a port it shares with its siblings (SO_REUSEPORT).
//
// Started by startFastS3 (fast-s3-server.ts) with an IPC channel: it reports `{ listening: port }` once it
// accepts connections, and exits when its parent disconnects, so no process outlives the stand-in's owner.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFastS3Handler } from './fast-s3-handler.ts';

/** A message from a worker to the process that started it. */
export type WorkerMessage = { listening: number } | { failed: string };

function argument(name: string): string {
  const at = process.argv.indexOf(name);
  const value = at >= 0 ? process.argv[at + 1] : undefined;
  if (value === undefined) {
    console.error(`fast-s3-worker: ${name} is missing; it is started by startFastS3 (localstack/fast-s3-server.ts) with --dir DIR --port PORT`);
    process.exit(64);
  }
  return value;
}

const dir = argument('--dir');
const port = Number(argument('--port'));
const discardAt = process.argv.indexOf('--discard-over');
const discardOver = discardAt >= 0 ? Number(process.argv[discardAt + 1]) : Number.POSITIVE_INFINITY;
const report = (message: WorkerMessage): void => void process.send?.(message);

// No total request time: a big object's PUT takes as long as its bytes take.
const server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 30_000 }, createFastS3Handler(dir, discardOver));
server.on('error', (error) => {
  report({ failed: `cannot listen on 127.0.0.1:${port}: ${error.message}` });
  process.exit(70);
});
server.listen({ port, host: '127.0.0.1', reusePort: true }, () => report({ listening: (server.address() as AddressInfo).port }));
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
