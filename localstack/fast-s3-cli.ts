// Runs the fast S3 stand-in until stopped: node localstack/fast-s3-cli.ts --dir /dev/shm/s3 [--port 4566] [--workers 2] [--bucket NAME ...] [--discard-over BYTES]
import { availableParallelism } from 'node:os';
import { startFastS3 } from './fast-s3-server.ts';

const usage =
  'usage: node localstack/fast-s3-cli.ts --dir DIR [--port PORT (default 0: any free one)] [--workers N (default: the cores)] [--bucket NAME ...] [--discard-over BYTES (check, then drop, every bigger object)]';

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  if (at < 0) return undefined;
  const value = process.argv[at + 1];
  if (value === undefined || value.startsWith('--')) {
    console.error(`fast-s3: ${name} needs a value; ${usage}`);
    process.exit(64);
  }
  return value;
}

const dir = option('--dir');
if (!dir) {
  console.error(`fast-s3: --dir is missing (the directory of the buckets, on tmpfs for measurements); ${usage}`);
  process.exit(64);
}
const port = Number(option('--port') ?? 0);
const workers = Number(option('--workers') ?? availableParallelism());
const discardText = option('--discard-over');
const discardOver = discardText === undefined ? undefined : Number(discardText);
if (discardText !== undefined && !/^\d+$/.test(discardText)) {
  console.error(`fast-s3: --discard-over ${JSON.stringify(discardText)} is not a whole number of bytes; ${usage}`);
  process.exit(64);
}
const buckets = process.argv.flatMap((arg, i) => (arg === '--bucket' && process.argv[i + 1] ? [process.argv[i + 1]!] : []));
try {
  const server = await startFastS3({ dir, port, workers, buckets, discardOver });
  console.log(
    `fast S3 stand-in on ${server.endpoint} (${workers} processes) serving ${dir}${discardOver === undefined ? '' : `, dropping objects over ${discardOver} bytes`}`,
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void server.stop().then(() => process.exit(0)));
} catch (error) {
  console.error(`fast-s3: ${(error as Error).message}`);
  process.exit(1);
}
