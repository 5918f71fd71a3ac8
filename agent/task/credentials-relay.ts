// Serves the current attempt's container credentials to the task on 127.0.0.1, so that a restored task's credentials keep working.
//
// CRIU restores the task's environment as it was dumped: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (or FULL_URI and its
// token) would still name the old ECS task, which the new instance does not know. So the task is launched with
// AWS_CONTAINER_CREDENTIALS_FULL_URI on this relay instead, and the agent of every later attempt serves the relay on
// the same port with the same token, from its own (current) container credentials.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../shared/clock.ts';
import { REFRESH_MARGIN_MS, RELAY_HEADERS_TIMEOUT_MS, RELAY_REQUEST_TIMEOUT_MS, STALE_SERVE_MIN_VALIDITY_MS, UPSTREAM_ATTEMPTS, UPSTREAM_RETRY_DELAY_MS, UPSTREAM_TIMEOUT_MS } from '../shared/limits.ts';

/** The one path the relay serves. */
export const RELAY_PATH = '/spotsnap/v1/credentials';
/** Where AWS SDKs resolve AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. */
export const ECS_CREDENTIALS_ENDPOINT = 'http://169.254.170.2';
export const ENV_RELATIVE_URI = 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI';
export const ENV_FULL_URI = 'AWS_CONTAINER_CREDENTIALS_FULL_URI';
export const ENV_TOKEN = 'AWS_CONTAINER_AUTHORIZATION_TOKEN';
export const ENV_TOKEN_FILE = 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE';

export interface CredentialsRelayOptions {
  /** The agent's own environment: where its container credentials come from. */
  agentEnv: NodeJS.ProcessEnv;
  /** On restore: the port and token the restored task still has in its environment. Default: a free port, a new token. */
  listen?: { port: number; token: string };
  log: Logger;
  fetchImpl?: typeof fetch;
  /** Base URL for a RELATIVE_URI (tests: a stand-in). */
  ecsEndpoint?: string;
  clock?: Clock;
}

export interface CredentialsRelay {
  readonly port: number;
  readonly token: string;
  /** The task's environment: FULL_URI and token of this relay, without RELATIVE_URI and the token file. */
  taskEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  close(): Promise<void>;
}

/** Where the agent's own credentials come from, as the AWS SDKs read it (RELATIVE_URI first, then FULL_URI). */
interface Upstream {
  url: string;
  kind: 'relative' | 'full';
  /** A fixed token (AWS_CONTAINER_AUTHORIZATION_TOKEN). */
  token?: string;
  /** A token file, read at every request (it is rotated, as EKS Pod Identity does); it wins over `token`. */
  tokenFile?: string;
}

/** An upstream answer that cannot be handed to the task. */
class UpstreamError extends Error {
  readonly status: 502 | 504;
  constructor(message: string, status: 502 | 504 = 502) {
    super(message);
    this.name = 'UpstreamError';
    this.status = status;
  }
}

interface Cached {
  /** The upstream's JSON answer, handed on as it came. */
  body: string;
  accessKeyId: string;
  /** Epoch ms of Expiration; undefined when the answer had none (then it is not cached). */
  expiresAt: number | undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function upstreamOf(env: NodeJS.ProcessEnv, ecsEndpoint: string): Upstream | undefined {
  const relative = nonEmpty(env[ENV_RELATIVE_URI]);
  const full = nonEmpty(env[ENV_FULL_URI]);
  if (relative !== undefined) {
    const path = relative.startsWith('/') ? relative : `/${relative}`;
    return { url: `${ecsEndpoint.replace(/\/$/, '')}${path}`, kind: 'relative' };
  }
  if (full === undefined) return undefined;
  let protocol: string;
  try {
    protocol = new URL(full).protocol;
  } catch {
    protocol = '';
  }
  if (protocol !== 'http:' && protocol !== 'https:') {
    throw new Error(`${ENV_FULL_URI}=${JSON.stringify(full)}: expected an absolute http(s) URL of the container credentials endpoint`);
  }
  const upstream: Upstream = { url: full, kind: 'full' };
  const token = nonEmpty(env[ENV_TOKEN]);
  const tokenFile = nonEmpty(env[ENV_TOKEN_FILE]);
  if (token !== undefined) upstream.token = token;
  if (tokenFile !== undefined) upstream.tokenFile = tokenFile;
  return upstream;
}

function checkListen(listen: { port: number; token: string }): void {
  if (!Number.isInteger(listen.port) || listen.port < 1 || listen.port > 65535) {
    throw new Error(`credentials relay port ${JSON.stringify(listen.port)}: expected the port recorded for the restored task, 1 to 65535`);
  }
  if (listen.token.length === 0) throw new Error('credentials relay token is empty: expected the token recorded for the restored task');
}

function sameToken(given: string | undefined, expected: Buffer): boolean {
  if (given === undefined) return false;
  const buffer = Buffer.from(given);
  return buffer.length === expected.length && timingSafeEqual(buffer, expected);
}

class Relay implements CredentialsRelay {
  private readonly server: http.Server;
  private readonly expectedToken: Buffer;
  private cached: Cached | undefined;
  private inFlight: Promise<Cached> | undefined;
  private listeningPort = 0;
  private readonly upstream: Upstream;
  readonly token: string;
  private readonly log: Logger;
  private readonly fetchImpl: typeof fetch;
  private readonly clock: Clock;

  constructor(upstream: Upstream, token: string, log: Logger, fetchImpl: typeof fetch, clock: Clock) {
    this.upstream = upstream;
    this.token = token;
    this.log = log;
    this.fetchImpl = fetchImpl;
    this.clock = clock;
    this.expectedToken = Buffer.from(token);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        // Never reached by design; kept so a bug answers 500 instead of ending the agent.
        this.log.error({ err: error }, 'credentials relay: unexpected error');
        if (!res.headersSent) this.reply(res, 500, { code: 'InternalError', message: 'the credentials relay failed; see the agent log' });
        else res.destroy();
      });
    });
    this.server.requestTimeout = RELAY_REQUEST_TIMEOUT_MS;
    this.server.headersTimeout = RELAY_HEADERS_TIMEOUT_MS;
    this.server.on('clientError', (_error, socket) => socket.destroy());
  }

  get port(): number {
    return this.listeningPort;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        const why = error.code === 'EADDRINUSE' ? 'the port is taken by another process' : error.message;
        reject(
          new Error(
            `credentials relay cannot listen on 127.0.0.1:${port}: ${why}` +
              (port === 0 ? '' : `; the restored task's ${ENV_FULL_URI} names this port, so its AWS credentials will not work until it is free`),
            { cause: error },
          ),
        );
      };
      this.server.once('error', onError);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.server.on('error', (error) => this.log.warn({ err: error }, 'credentials relay: server error'));
    // The relay never keeps the agent alive by itself.
    this.server.unref();
    this.listeningPort = (this.server.address() as AddressInfo).port;
  }

  taskEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const out: NodeJS.ProcessEnv = { ...env };
    delete out[ENV_RELATIVE_URI];
    delete out[ENV_TOKEN_FILE];
    out[ENV_FULL_URI] = `http://127.0.0.1:${this.port}${RELAY_PATH}`;
    out[ENV_TOKEN] = this.token;
    return out;
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private reply(res: http.ServerResponse, status: number, body: unknown): void {
    // Connection: close, so that the task holds no TCP connection to the relay when it is checkpointed.
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), connection: 'close' });
    res.end(text);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const pathname = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (pathname !== RELAY_PATH) return this.reply(res, 404, { code: 'NotFound', message: `the credentials relay serves only ${RELAY_PATH}` });
    if (req.method !== 'GET') return this.reply(res, 405, { code: 'MethodNotAllowed', message: 'credentials are read with GET' });
    const authorization = req.headers.authorization;
    if (authorization === undefined) return this.reply(res, 401, { code: 'Unauthorized', message: `missing Authorization header (${ENV_TOKEN})` });
    if (!sameToken(authorization, this.expectedToken)) return this.reply(res, 403, { code: 'AccessDenied', message: `wrong Authorization token (${ENV_TOKEN})` });
    try {
      const credentials = await this.credentials();
      return this.reply(res, 200, credentials.body);
    } catch (error) {
      const status = error instanceof UpstreamError ? error.status : 502;
      const message = error instanceof Error ? error.message : String(error);
      this.log.warn({ upstream: this.upstream.kind, status, error: message }, 'credentials relay: the agent could not get its container credentials');
      return this.reply(res, status, { code: status === 504 ? 'UpstreamTimeout' : 'UpstreamUnavailable', message });
    }
  }

  /** The cached credentials while they are fresh; otherwise one shared upstream fetch; stale but valid ones if that fails. */
  private async credentials(): Promise<Cached> {
    const now = this.clock.now();
    const cached = this.cached;
    if (cached?.expiresAt !== undefined && now < cached.expiresAt - REFRESH_MARGIN_MS) return cached;
    this.inFlight ??= this.fetchWithRetry().finally(() => (this.inFlight = undefined));
    try {
      const fresh = await this.inFlight;
      if (fresh.expiresAt !== undefined) this.cached = fresh;
      return fresh;
    } catch (error) {
      if (cached?.expiresAt !== undefined && this.clock.now() < cached.expiresAt - STALE_SERVE_MIN_VALIDITY_MS) {
        this.log.warn({ error: error instanceof Error ? error.message : String(error) }, 'credentials relay: refresh failed; serving the cached credentials, still valid');
        return cached;
      }
      throw error;
    }
  }

  private async fetchWithRetry(): Promise<Cached> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= UPSTREAM_ATTEMPTS; attempt++) {
      if (attempt > 1) await this.clock.sleep(UPSTREAM_RETRY_DELAY_MS);
      try {
        const fetched = await this.fetchOnce();
        if (this.cached?.accessKeyId !== fetched.accessKeyId) {
          this.log.info({ upstream: this.upstream.kind, expiresAt: fetched.expiresAt === undefined ? null : new Date(fetched.expiresAt).toISOString() }, 'credentials relay: got container credentials');
        }
        return fetched;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  private async fetchOnce(): Promise<Cached> {
    const headers: Record<string, string> = {};
    const token = await this.upstreamToken();
    if (token !== undefined) headers.authorization = token;
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(this.upstream.url, { headers, signal: AbortSignal.timeout(UPSTREAM_TIMEOUT_MS) });
      text = await response.text();
    } catch (error) {
      const name = error instanceof Error ? error.name : '';
      if (name === 'TimeoutError' || name === 'AbortError') {
        throw new UpstreamError(`the container credentials endpoint (${this.upstream.kind} URI) did not answer within ${UPSTREAM_TIMEOUT_MS} ms`, 504);
      }
      const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
      throw new UpstreamError(`the container credentials endpoint (${this.upstream.kind} URI) could not be reached: ${error instanceof Error ? error.message : String(error)}${cause}`);
    }
    if (response.status !== 200) {
      throw new UpstreamError(`the container credentials endpoint (${this.upstream.kind} URI) answered ${response.status}: ${text.slice(0, 200)}`);
    }
    return parseCredentials(text, this.upstream.kind);
  }

  private async upstreamToken(): Promise<string | undefined> {
    if (this.upstream.tokenFile !== undefined) {
      try {
        return (await readFile(this.upstream.tokenFile, 'utf8')).trim();
      } catch (error) {
        throw new UpstreamError(`${ENV_TOKEN_FILE}=${JSON.stringify(this.upstream.tokenFile)} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return this.upstream.token;
  }
}

/** Checks an upstream answer has what SDKs need; the body is handed on unchanged. */
function parseCredentials(text: string, kind: Upstream['kind']): Cached {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new UpstreamError(`the container credentials endpoint (${kind} URI) answered something that is not JSON`);
  }
  const record = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const { AccessKeyId, SecretAccessKey, Expiration } = record;
  if (typeof AccessKeyId !== 'string' || AccessKeyId === '' || typeof SecretAccessKey !== 'string' || SecretAccessKey === '') {
    throw new UpstreamError(`the container credentials endpoint (${kind} URI) answered without AccessKeyId and SecretAccessKey`);
  }
  let expiresAt: number | undefined;
  if (Expiration !== undefined) {
    expiresAt = typeof Expiration === 'string' ? Date.parse(Expiration) : Number.NaN;
    if (Number.isNaN(expiresAt)) throw new UpstreamError(`the container credentials endpoint (${kind} URI) answered an Expiration that is not a date: ${JSON.stringify(Expiration)}`);
  }
  return { body: text, accessKeyId: AccessKeyId, expiresAt };
}

/**
 * Starts the relay when the agent's environment has container credentials (RELATIVE_URI or FULL_URI), else
 * resolves undefined. With `listen` (a restore) it listens on exactly that port with that token, and rejects
 * when the port is taken.
 */
export async function startCredentialsRelay(options: CredentialsRelayOptions): Promise<CredentialsRelay | undefined> {
  let upstream: Upstream | undefined;
  try {
    upstream = upstreamOf(options.agentEnv, options.ecsEndpoint ?? ECS_CREDENTIALS_ENDPOINT);
  } catch (error) {
    // The task gets the environment as it is, and fares as it would without spotsnap.
    options.log.warn({ error: (error as Error).message }, 'credentials relay not started: the container credentials settings are unusable');
    return undefined;
  }
  if (upstream === undefined) return undefined;
  if (options.listen) checkListen(options.listen);
  const token = options.listen?.token ?? randomBytes(32).toString('hex');
  const relay = new Relay(upstream, token, options.log, options.fetchImpl ?? fetch, options.clock ?? systemClock);
  await relay.listen(options.listen?.port ?? 0);
  options.log.info({ port: relay.port, upstream: upstream.kind, reused: options.listen !== undefined }, 'credentials relay listening on 127.0.0.1 for the task');
  return relay;
}
