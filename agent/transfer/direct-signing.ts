// Signs the agent's hot requests (pack PUTs, ranged GETs) itself, with the SDK's own signer, from what the SDK resolved for the first of each kind: its middleware stack costs about a millisecond of the main thread per request.
//
// Measured with `perf` on `npm run bench:pipeline -- --restore` (1 GiB): the SDK's own frames (serializing,
// endpoint rules, middleware, flexible checksums, signing) were 15% of the agent's main thread during the
// checkpoint (128 pack PUTs) and 26% during the restore (256 ranged GETs). The first request of a kind still
// goes through the SDK, and its signed request, once S3 took it, is learned: the endpoint (protocol, host,
// port, the path before the key), the signing scope (region, service) from its Authorization header, and the
// headers every such request carries (user agent, encryption, payload hash, checksum algorithm). Later requests
// are those headers, their own key, length, checksum or range, signed by the signer the SDK itself builds
// (`client.config.signer`) with its clock offset. An answer other than a 2xx, or a failure on the way, is handed
// to the SDK as the outcome of its own first attempt (direct-object-put.ts, direct-range-get.ts), so that it
// retries, follows redirects and turns error documents into its errors exactly as before: only the success
// path is shorter. But for a 400 or a 403, which might be this module's fault: the SDK then sends its own first
// attempt, and that kind stays with the SDK from then on.
import type { S3Client } from '@aws-sdk/client-s3';
import type { PlainResponse, SignedRequest } from './direct-http-send.ts';

/** What a later request of a learned kind is built from. */
interface LearnedRoute {
  protocol: string;
  hostname: string;
  port?: number;
  /** The request path before the key's encoding (`/bucket/` path-style, `/` for a bucket's own host). */
  pathPrefix: string;
  query: Record<string, string | Array<string | null> | null>;
  /** Headers every request of the kind carries, less those that are the request's own (see OWN_HEADERS). */
  headers: Record<string, string>;
  region: string;
  service: string;
}

/**
 * Headers that belong to one request and are not learned: its signature and date, the ids the SDK gives each
 * invocation, the parts a caller gives (length, range, checksum value), and those the transport writes.
 */
const OWN_HEADERS =
  /^(authorization|x-amz-date|x-amz-security-token|amz-sdk-invocation-id|amz-sdk-request|content-length|content-md5|range|host|expect|transfer-encoding|x-amz-checksum-(crc32|crc32c|crc64nvme|sha1|sha256))$/i;

/** The scope in a SigV4 Authorization header: `Credential=KEY/DATE/REGION/SERVICE/aws4_request`. */
const CREDENTIAL_SCOPE = /^AWS4-HMAC-SHA256 Credential=[^/]+\/\d{8}\/([^/,\s]+)\/([^/,\s]+)\/aws4_request\b/;

type Signer = Awaited<ReturnType<S3Client['config']['signer']>>;

const routes = new WeakMap<S3Client, Map<string, LearnedRoute>>();
/** Kinds whose short attempt S3 refused as a request (400, 403): never learned again for that client. */
const refusedKinds = new WeakMap<S3Client, Map<string, true>>();
const signers = new WeakMap<S3Client, Map<string, Promise<Signer>>>();

/** The map `maps` holds for `client`, made empty the first time. */
function mapOf<T>(maps: WeakMap<S3Client, Map<string, T>>, client: S3Client): Map<string, T> {
  let map = maps.get(client);
  if (!map) {
    map = new Map();
    maps.set(client, map);
  }
  return map;
}

/** A key as the SDK puts it in a path: each segment URI-encoded (RFC 3986, `!'()*` too), the slashes kept. */
export function encodedKeyPath(key: string): string {
  return key
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/**
 * Learns kind `kind` from `request`, which the SDK signed for `key` and S3 answered with a 2xx. What teaches
 * nothing (later requests of the kind then keep going through the SDK): a request that does not show its key
 * at the end of its path; one not signed with SigV4 for the service `s3` (a directory bucket's are signed for
 * `s3express` with session credentials of its own, `x-amz-s3session-token`, which only the SDK renews); and a
 * kind whose short attempt S3 once refused.
 */
export function learnRoute(client: S3Client, kind: string, key: string, request: SignedRequest): void {
  const header = (wanted: string) => Object.entries(request.headers).find(([name]) => name.toLowerCase() === wanted)?.[1];
  const authorization = header('authorization');
  const scope = authorization ? CREDENTIAL_SCOPE.exec(authorization) : null;
  const encoded = encodedKeyPath(key);
  if (scope?.[2] !== 's3' || header('x-amz-s3session-token') !== undefined || !request.path.endsWith(encoded)) return;
  if (refusedKinds.get(client)?.has(kind)) return;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) if (!OWN_HEADERS.test(name)) headers[name] = value;
  const known = mapOf(routes, client);
  known.set(kind, {
    protocol: request.protocol,
    hostname: request.hostname,
    ...(request.port === undefined ? {} : { port: request.port }),
    pathPrefix: request.path.slice(0, request.path.length - encoded.length),
    query: { ...request.query },
    headers,
    region: scope[1]!,
    service: scope[2]!,
  });
}

/**
 * The kind of a request: its method, its bucket and the parameters that are the same for every request of
 * the kind (encryption, checksum algorithm), which shape the headers learned for it.
 */
export function requestKind(method: 'PUT' | 'GET', bucket: string, fixed: Record<string, unknown> = {}): string {
  return `${method} ${bucket} ${JSON.stringify(fixed)}`;
}

/** Whether requests of `kind` can be signed here yet. */
export function knowsRoute(client: S3Client, kind: string): boolean {
  return routes.get(client)?.has(kind) ?? false;
}

/** The signer the SDK builds for this client and scope, made once. */
function signerFor(client: S3Client, region: string, service: string): Promise<Signer> {
  const known = mapOf(signers, client);
  const id = `${region}/${service}`;
  let signer = known.get(id);
  if (!signer) {
    signer = client.config.signer({ name: 'sigv4', signingName: service, signingRegion: region, properties: {} });
    // A signer that could not be made is asked for again next time, not remembered.
    signer.catch(() => known.delete(id));
    known.set(id, signer);
  }
  return signer;
}

/**
 * A request of learned kind `kind` for `key` with its own `headers` (lower-case names), signed now; undefined
 * while the kind is not learned. Rejects only when signing fails (credentials that cannot be had), which the
 * caller treats as any other failure of the short path.
 */
export async function signLearned(client: S3Client, kind: string, key: string, headers: Record<string, string>): Promise<SignedRequest | undefined> {
  const route = routes.get(client)?.get(kind);
  if (!route) return undefined;
  const { protocol, hostname, port, pathPrefix, query, region, service } = route;
  const host = port === undefined ? hostname : `${hostname}:${port}`;
  const request = {
    method: kind.slice(0, kind.indexOf(' ')),
    protocol,
    hostname,
    ...(port === undefined ? {} : { port }),
    path: pathPrefix + encodedKeyPath(key),
    query: { ...query },
    headers: { ...route.headers, ...headers, host },
  };
  const signer = await signerFor(client, region, service);
  const signingDate = new Date(Date.now() + (client.config.systemClockOffset ?? 0));
  const signed = (await signer.sign(request as never, { signingDate, signingRegion: region, signingService: service })) as unknown as SignedRequest;
  return signed;
}

/** How the short path's attempt ended: with an answer (of any status), or failed on its way. */
export type LearnedAttempt = { response: PlainResponse } | { error: unknown };

/**
 * Sends a request of learned kind `kind` by the short path. Undefined while the kind is not learned; else how
 * it ended, which the caller hands to the SDK as the outcome of its first attempt unless it was a 2xx (so that
 * the SDK judges it as its own: an error document becomes its error, a 5xx or a dropped connection is retried,
 * a refusal is not, a redirect is followed). An error that `final` names (an abort, the sink's own refusal) is
 * thrown instead.
 */
export async function sendLearned(
  client: S3Client,
  kind: string,
  key: string,
  headers: Record<string, string>,
  send: (request: SignedRequest) => Promise<PlainResponse>,
  final: (error: unknown) => boolean,
): Promise<LearnedAttempt | undefined> {
  try {
    const request = await signLearned(client, kind, key, headers);
    if (!request) return undefined;
    return { response: await send(request) };
  } catch (error) {
    if (final(error)) throw error;
    return { error };
  }
}

/**
 * Whether the SDK may take `attempt` as its own first attempt's outcome. Not a refusal of the request itself
 * (400, 403: a signature, token or clock S3 did not accept might be this module's fault, not the caller's):
 * then the kind is forgotten for good on this client, and the SDK sends its own first attempt, signed its way,
 * so that a fault of the short path can never fail a request the SDK would have carried. Everything else (a
 * redirect, a 404, a 5xx, a dropped connection) the SDK judges as it would its own.
 */
export function replayable(client: S3Client, kind: string, attempt: LearnedAttempt | undefined): LearnedAttempt | undefined {
  if (!attempt || !('response' in attempt)) return attempt;
  const status = attempt.response.statusCode;
  if (status !== 400 && status !== 403) return attempt;
  routes.get(client)?.delete(kind);
  mapOf(refusedKinds, client).set(kind, true);
  return undefined;
}

/** Whether S3 answered with a 2xx. */
export function answeredOk(response: PlainResponse): boolean {
  return response.statusCode >= 200 && response.statusCode < 300;
}

/** Whether an attempt was answered with a 2xx. */
export function succeeded(attempt: LearnedAttempt | undefined): attempt is { response: PlainResponse } {
  return attempt !== undefined && 'response' in attempt && answeredOk(attempt.response);
}

/**
 * The SDK's side of a request whose first attempt may have been the short path's: the first call hands back
 * that attempt's answer (or throws its error) without sending anything; every later one (the SDK's retries,
 * or every call when there was no such attempt) sends for real through the `send` it is given.
 */
export function replayingFirst(first: LearnedAttempt | undefined): (send: () => Promise<PlainResponse>) => Promise<PlainResponse> {
  let pending = first;
  return async (send) => {
    const attempt = pending;
    pending = undefined;
    if (!attempt) return send();
    if ('error' in attempt) throw attempt.error;
    return attempt.response;
  };
}
