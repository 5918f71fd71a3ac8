// The agent's own container credentials: where the environment says they come from, fetched with retries and cached.
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { LogEvent } from '../shared/log-events.ts';
import type { Clock } from '../shared/clock.ts';
import { REFRESH_MARGIN_MS, STALE_SERVE_MIN_VALIDITY_MS, UPSTREAM_ATTEMPTS, UPSTREAM_RETRY_DELAY_MS, UPSTREAM_TIMEOUT_MS } from '../shared/limits.ts';

/** Where AWS SDKs resolve AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. */
export const ECS_CREDENTIALS_ENDPOINT = 'http://169.254.170.2';
export const ENV_RELATIVE_URI = 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI';
export const ENV_FULL_URI = 'AWS_CONTAINER_CREDENTIALS_FULL_URI';
export const ENV_TOKEN = 'AWS_CONTAINER_AUTHORIZATION_TOKEN';
export const ENV_TOKEN_FILE = 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE';

/** Where the agent's own credentials come from, as the AWS SDKs read it (RELATIVE_URI first, then FULL_URI). */
export interface Upstream {
  url: string;
  kind: 'relative' | 'full';
  /** A fixed token (AWS_CONTAINER_AUTHORIZATION_TOKEN). */
  token?: string;
  /** A token file, read at every request (it is rotated, as EKS Pod Identity does); it wins over `token`. */
  tokenFile?: string;
}

/** An upstream answer that cannot be handed to the task. */
export class UpstreamError extends Error {
  readonly status: 502 | 504;
  constructor(message: string, status: 502 | 504 = 502) {
    super(message);
    this.name = 'UpstreamError';
    this.status = status;
  }
}

/** One checked upstream answer. */
export interface FetchedCredentials {
  /** The upstream's JSON answer, handed on as it came. */
  body: string;
  accessKeyId: string;
  /** Epoch ms of Expiration; undefined when the answer had none (then it is not cached). */
  expiresAt: number | undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Where `env` says the agent's credentials come from, or undefined; throws when FULL_URI is not an http(s) URL. */
export function upstreamOf(env: NodeJS.ProcessEnv, ecsEndpoint: string): Upstream | undefined {
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

/** The upstream's credentials: cached while fresh, one fetch shared by concurrent callers, retried, and stale but valid ones when a refresh fails. */
export class UpstreamCredentials {
  private cached: FetchedCredentials | undefined;
  private inFlight: Promise<FetchedCredentials> | undefined;
  private readonly upstream: Upstream;
  private readonly log: Logger;
  private readonly fetchImpl: typeof fetch;
  private readonly clock: Clock;

  constructor(upstream: Upstream, log: Logger, fetchImpl: typeof fetch, clock: Clock) {
    this.upstream = upstream;
    this.log = log;
    this.fetchImpl = fetchImpl;
    this.clock = clock;
  }

  /** Which variable named the upstream, for log lines. */
  get kind(): Upstream['kind'] {
    return this.upstream.kind;
  }

  /** The cached credentials while they are fresh; otherwise one shared upstream fetch; stale but valid ones if that fails. */
  async get(): Promise<FetchedCredentials> {
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
        this.log.warn(
          { event: LogEvent.credentialsStaleServed, error: error instanceof Error ? error.message : String(error) },
          'credentials relay: refresh failed; serving the cached credentials, still valid',
        );
        return cached;
      }
      throw error;
    }
  }

  private async fetchWithRetry(): Promise<FetchedCredentials> {
    let lastError: unknown;
    for (let attempt = 1; attempt <= UPSTREAM_ATTEMPTS; attempt++) {
      if (attempt > 1) await this.clock.sleep(UPSTREAM_RETRY_DELAY_MS);
      try {
        const fetched = await this.fetchOnce();
        if (this.cached?.accessKeyId !== fetched.accessKeyId) {
          this.log.info(
            {
              event: LogEvent.credentialsFetched,
              upstream: this.upstream.kind,
              expiresAt: fetched.expiresAt === undefined ? null : new Date(fetched.expiresAt).toISOString(),
            },
            'credentials relay: got container credentials',
          );
        }
        return fetched;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  private async fetchOnce(): Promise<FetchedCredentials> {
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
      throw new UpstreamError(
        `the container credentials endpoint (${this.upstream.kind} URI) could not be reached: ${error instanceof Error ? error.message : String(error)}${cause}`,
      );
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
        throw new UpstreamError(
          `${ENV_TOKEN_FILE}=${JSON.stringify(this.upstream.tokenFile)} cannot be read: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
    }
    return this.upstream.token;
  }
}

/** Checks an upstream answer has what SDKs need; the body is handed on unchanged. */
function parseCredentials(text: string, kind: Upstream['kind']): FetchedCredentials {
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
    if (Number.isNaN(expiresAt))
      throw new UpstreamError(`the container credentials endpoint (${kind} URI) answered an Expiration that is not a date: ${JSON.stringify(Expiration)}`);
  }
  return { body: text, accessKeyId: AccessKeyId, expiresAt };
}
