// Ranged GETs whose body goes from one reused socket read buffer straight to a sink: signed as the SDK signed the first of them (direct-signing.ts), or by the SDK, which retries.
//
// Through the SDK's own HTTP handler every socket read of a download is a new 64 KiB buffer that lives until
// the next garbage collection: a restore of 1 GiB left about 30 MiB of them in the agent's heap at a time and
// copied every byte once more into a transfer buffer. Here each connection reads into one buffer of its own,
// and the sink takes each piece before the next read overwrites it. Measured on the benchmark's machine
// against the local S3 emulator, 1 GiB in 8 MiB ranges, four at a time, each byte hashed: 1.3-1.4 s and 1.2 s
// of CPU with a peak RSS of 94 MiB here, against 1.9 s, 1.85 s and 140 MiB through the SDK's handler.
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { sendDirect, type BodySink, type SignedRequest } from './direct-http-send.ts';
import { answeredOk, learnRoute, replayable, replayingFirst, requestKind, sendLearned, succeeded } from './direct-signing.ts';
import { S3_LIMITS } from '../shared/limits.ts';

// The transport, for callers that name this module: sendDirect (the limits' tests) and the sink type of getRangeDirect.
export { sendDirect, type BodySink } from './direct-http-send.ts';

/**
 * GETs `bytes` bytes at `offset` of an object into `sink`. Once a GET of the same bucket went through the SDK,
 * it is signed as that one was and sent at once. The first goes through the SDK (endpoint, credentials,
 * signing, retries, error documents) but not its HTTP handler, and so does one whose short attempt was not
 * answered with a 2xx (the SDK takes that answer, or failure, as its own first attempt's, but for a 400 or
 * 403, after which it sends its own: direct-signing.ts); one the sink
 * refused stops there. Rejects unless exactly those bytes arrived.
 */
export async function getRangeDirect(client: S3Client, bucket: string, key: string, offset: number, bytes: number, sink: BodySink): Promise<void> {
  let delivered = 0;
  /** What the sink (or the count of bytes) threw: the transfer's own end, never sent again. */
  let refusal: unknown;
  const refused = <T>(step: () => T): T => {
    try {
      return step();
    } catch (error) {
      refusal = error;
      throw error;
    }
  };
  const counting: BodySink = {
    restart: () => {
      delivered = 0;
      sink.restart();
    },
    write: (piece) =>
      refused(() => {
        delivered += piece.length;
        if (delivered > bytes) throw new RangeLengthError(key, offset, bytes, `more bytes than asked for (${delivered} bytes)`);
        sink.write(piece);
      }),
    ready: () => {
      const wait = sink.ready?.();
      return wait?.catch((error: unknown) => {
        refusal = error;
        throw error;
      });
    },
    into: (left) => sink.into?.(Math.min(left, bytes - delivered)),
  };
  const range = `bytes=${offset}-${offset + bytes - 1}`;
  const kind = requestKind('GET', bucket);
  const send = (request: SignedRequest) => sendDirect(request, counting, S3_LIMITS);
  const first = await sendLearned(client, kind, key, { range }, send, (error) => error === refusal);
  if (succeeded(first)) return checkRange(first.response.headers['content-range'], delivered, key, offset, bytes);
  const attempt = replayingFirst(replayable(client, kind, first));
  const command = new GetObjectCommand({ Bucket: bucket, Key: key, Range: range });
  command.middlewareStack.add(
    () => async (args) => {
      const request = args.request as SignedRequest;
      const response = await attempt(() => send(request));
      if (answeredOk(response)) learnRoute(client, kind, key, request);
      return { response, output: undefined } as never;
    },
    { step: 'deserialize', priority: 'low', name: 'spotsnapDirectRangeGet' },
  );
  const output = await client.send(command);
  checkRange(output.ContentRange, delivered, key, offset, bytes);
}

/** Rejects a ranged read that did not deliver exactly its bytes, or whose Content-Range names others. */
function checkRange(contentRange: string | undefined, delivered: number, key: string, offset: number, bytes: number): void {
  if (delivered !== bytes) throw new RangeLengthError(key, offset, bytes, `a short read (${delivered} bytes)`);
  if (contentRange !== undefined && !contentRange.startsWith(`bytes ${offset}-${offset + bytes - 1}/`)) {
    throw new RangeLengthError(key, offset, bytes, `the range "${contentRange}"`);
  }
}

/** A ranged read that did not return the bytes asked for. */
export class RangeLengthError extends Error {
  constructor(key: string, offset: number, bytes: number, got: string) {
    super(`${key} bytes ${offset}+${bytes}: ${got} does not match the manifest's size`);
    this.name = 'RangeLengthError';
  }
}
