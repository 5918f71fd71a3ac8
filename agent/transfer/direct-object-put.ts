// PUTs whose body goes from the caller's buffers straight to the socket, without being joined first: signed as the SDK signed the first of them (direct-signing.ts), or by the SDK, which retries.
//
// A pack is its chunks one after the other. Through the SDK's own HTTP handler its body must be one buffer, so
// every chunk was copied into an 8 MiB pack buffer before it went (about 0.14 CPU-seconds per GiB on the main
// thread, measured with `npm run bench:pipeline`). Here the request's head and each chunk's buffer go to the
// socket in one write of many buffers, and each attempt the SDK makes (a retry after a dropped connection or a
// 5xx) sends the same buffers again.
import { PutObjectCommand, type PutObjectCommandInput, type S3Client } from '@aws-sdk/client-s3';
import { DISCARD_BODY, sendDirect, type SignedRequest } from './direct-http-send.ts';
import { answeredOk, learnRoute, replayable, replayingFirst, requestKind, sendLearned, succeeded } from './direct-signing.ts';
import { S3_LIMITS } from '../shared/limits.ts';

/** The SDK's body for a request whose bytes this module sends itself: nothing for its middleware to read or hash. */
const NO_BODY = new Uint8Array(0);

/**
 * PUTs `parts`, in order, as the object `input` names (its Body is ignored: the parts are the body), with an
 * unsigned payload. Once a PUT of the same kind (bucket, encryption, checksum algorithm) went through the SDK,
 * it is signed as that one was and sent at once. The first goes through the SDK (endpoint, credentials,
 * signing, retries, error documents) but not its HTTP handler, and so does one whose short attempt was not
 * answered with a 2xx: the SDK takes that answer (or failure) as its own first attempt's, and judges it so,
 * unless it was a 400 or 403 (direct-signing.ts: the SDK then sends its own).
 * The parts must not change until this settles.
 */
export async function putObjectDirect(
  client: S3Client,
  input: Omit<PutObjectCommandInput, 'Body' | 'ContentLength'>,
  parts: readonly Uint8Array[],
  signal?: AbortSignal,
): Promise<void> {
  // The SDK would compute a checksum the caller did not give over its own (empty) body, which S3 would refuse.
  const algorithm = input.ChecksumAlgorithm;
  if (algorithm && !input[`Checksum${algorithm}` as keyof typeof input]) {
    throw new Error(`putObjectDirect needs the value of Checksum${algorithm} for ${input.Key}: it cannot compute one over parts it sends itself`);
  }
  const bytes = parts.reduce((sum, part) => sum + part.length, 0);
  const checksumField = algorithm ? (`Checksum${algorithm}` as const) : undefined;
  const { Bucket, Key, ...fixed } = input;
  if (checksumField) delete (fixed as Record<string, unknown>)[checksumField];
  const kind = requestKind('PUT', String(Bucket), fixed);
  const own: Record<string, string> = { 'content-length': String(bytes) };
  if (algorithm && checksumField) own[`x-amz-checksum-${algorithm.toLowerCase()}`] = String(input[checksumField]);
  const send = (request: SignedRequest) => sendDirect(request, DISCARD_BODY, S3_LIMITS, { body: parts, signal });
  const first = await sendLearned(client, kind, String(Key), own, send, () => signal?.aborted === true);
  if (succeeded(first)) return;
  const attempt = replayingFirst(replayable(client, kind, first));
  const command = new PutObjectCommand({ ...input, Body: NO_BODY, ContentLength: bytes });
  command.middlewareStack.add(
    (next) => async (args) => {
      // The body is not hashed for the signature: its CRC-32 (or SHA-256) header is what S3 checks it by.
      (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'spotsnapUnsignedPayload' },
  );
  command.middlewareStack.add(
    () => async (args) => {
      const request = args.request as SignedRequest;
      const length = request.headers['content-length'] ?? request.headers['Content-Length'];
      if (length !== String(bytes))
        throw new Error(`refusing to PUT ${input.Key}: its content-length header is ${JSON.stringify(length)}, not the ${bytes} bytes of its body`);
      const response = await attempt(() => send(request));
      if (answeredOk(response)) learnRoute(client, kind, String(Key), request);
      return { response, output: undefined } as never;
    },
    { step: 'deserialize', priority: 'low', name: 'spotsnapDirectObjectPut' },
  );
  await client.send(command, { abortSignal: signal });
}
