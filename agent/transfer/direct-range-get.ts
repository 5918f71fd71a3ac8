// Ranged GETs whose body goes from one reused socket read buffer straight to a sink: the SDK signs and retries, this carries.
//
// Through the SDK's own HTTP handler every socket read of a download is a new 64 KiB buffer that lives until
// the next garbage collection: a restore of 1 GiB left about 30 MiB of them in the agent's heap at a time and
// copied every byte once more into a transfer buffer. Here each connection reads into one buffer of its own,
// and the sink takes each piece before the next read overwrites it. Measured on the benchmark's machine
// against the local S3 emulator, 1 GiB in 8 MiB ranges, four at a time, each byte hashed: 1.3-1.4 s and 1.2 s
// of CPU with a peak RSS of 94 MiB here, against 1.9 s, 1.85 s and 140 MiB through the SDK's handler.
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { sendDirect, type BodySink, type SignedRequest } from './direct-http-send.ts';

// The transport, for callers that name this module: sendDirect (the limits' tests) and the sink type of getRangeDirect.
export { sendDirect, type BodySink } from './direct-http-send.ts';

/**
 * GETs `bytes` bytes at `offset` of an object into `sink`, through the SDK (endpoint, credentials, signing,
 * retries, error documents) but not its HTTP handler. Rejects unless exactly those bytes arrived.
 */
export async function getRangeDirect(client: S3Client, bucket: string, key: string, offset: number, bytes: number, sink: BodySink): Promise<void> {
  let delivered = 0;
  const counting: BodySink = {
    restart: () => {
      delivered = 0;
      sink.restart();
    },
    write: (piece) => {
      delivered += piece.length;
      if (delivered > bytes) throw new RangeLengthError(key, offset, bytes, `more bytes than asked for (${delivered} bytes)`);
      sink.write(piece);
    },
    ready: () => sink.ready?.(),
    into: (left) => sink.into?.(Math.min(left, bytes - delivered)),
  };
  const command = new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${offset}-${offset + bytes - 1}` });
  command.middlewareStack.add(() => async (args) => ({ response: await sendDirect(args.request as SignedRequest, counting), output: undefined }) as never, {
    step: 'deserialize',
    priority: 'low',
    name: 'spotsnapDirectRangeGet',
  });
  const output = await client.send(command);
  if (delivered !== bytes) throw new RangeLengthError(key, offset, bytes, `a short read (${delivered} bytes)`);
  const range = output.ContentRange;
  if (range !== undefined && !range.startsWith(`bytes ${offset}-${offset + bytes - 1}/`)) {
    throw new RangeLengthError(key, offset, bytes, `the range "${range}"`);
  }
}

/** A ranged read that did not return the bytes asked for. */
export class RangeLengthError extends Error {
  constructor(key: string, offset: number, bytes: number, got: string) {
    super(`${key} bytes ${offset}+${bytes}: ${got} does not match the manifest's size`);
    this.name = 'RangeLengthError';
  }
}
