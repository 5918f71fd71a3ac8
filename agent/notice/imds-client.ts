// The EC2 instance metadata protocol in one place: IMDSv2 tokens with refresh, a new token on 401, IMDSv1 fallback.
import { systemClock, type Clock } from '../shared/clock.ts';
import { IMDS_REQUEST_TIMEOUT_MS, IMDS_TOKEN_TTL_SECONDS, IMDS_V1_FALLBACK_MS } from '../shared/limits.ts';
import { parseSpotNotice, type SpotNotice } from './spot-notice.ts';

export const TOKEN_PATH = '/latest/api/token';
export const SPOT_ACTION_PATH = '/latest/meta-data/spot/instance-action';
export const TOKEN_TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
export const TOKEN_HEADER = 'x-aws-ec2-metadata-token';

export interface ImdsClientOptions {
  /** Base URL, e.g. http://169.254.169.254 (AWS_EC2_METADATA_SERVICE_ENDPOINT). */
  endpoint: string;
  /** Per-request timeout (IMDS_REQUEST_TIMEOUT_MS in limits.ts). */
  timeoutMs?: number;
  /** Lifetime asked for each token (IMDS_TOKEN_TTL_SECONDS in limits.ts). */
  tokenTtlSeconds?: number;
  clock?: Clock;
}

/** A metadata request that did not give a usable answer. */
export class ImdsError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'ImdsError';
    this.status = status;
  }
}

interface Token {
  value: string;
  expiresAt: number;
}

/** How the client talks to the service: with tokens (v2), or without after the token call failed (v1). */
export type ImdsMode = 'v2' | 'v1';

export class ImdsClient {
  private readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly tokenTtlSeconds: number;
  private readonly clock: Clock;
  private token: Token | undefined;
  private v1Until = 0;
  /** Why the client went over to v1, named in the errors of v1 requests. */
  private v1Reason = '';

  constructor(options: ImdsClientOptions) {
    this.endpoint = options.endpoint.replace(/\/$/, '');
    this.timeoutMs = options.timeoutMs ?? IMDS_REQUEST_TIMEOUT_MS;
    this.tokenTtlSeconds = options.tokenTtlSeconds ?? IMDS_TOKEN_TTL_SECONDS;
    this.clock = options.clock ?? systemClock;
  }

  /** Which protocol the next request uses. */
  get mode(): ImdsMode {
    return this.clock.now() < this.v1Until ? 'v1' : 'v2';
  }

  /** The spot interruption notice, or null when none is posted (404). */
  async spotNotice(): Promise<SpotNotice | null> {
    const response = await this.get(SPOT_ACTION_PATH);
    if (response.status === 404) return null;
    if (response.status === 401 && this.mode === 'v1') {
      throw new ImdsError(
        `GET ${SPOT_ACTION_PATH} answered 401 to a request without a token, and the token call failed (${this.v1Reason}): the service ` +
          'requires IMDSv2 tokens but their answer does not arrive; for a container behind a bridge, set the instance metadata hop limit to 2',
        401,
      );
    }
    if (response.status !== 200) throw new ImdsError(`GET ${SPOT_ACTION_PATH} answered ${response.status}`, response.status);
    return parseSpotNotice(response.body);
  }

  /**
   * GET a metadata path; a 401 drops the token and tries once more with a new one. A 401 to a request without a
   * token also ends the v1 fallback: the service requires tokens, so the token call is tried again at once.
   */
  async get(path: string): Promise<{ status: number; body: string }> {
    let response = await this.request('GET', path, await this.tokenHeaders());
    if (response.status === 401) {
      this.token = undefined;
      this.v1Until = 0;
      response = await this.request('GET', path, await this.tokenHeaders());
    }
    return response;
  }

  private async tokenHeaders(): Promise<Record<string, string>> {
    if (this.mode === 'v1') return {};
    const now = this.clock.now();
    // Refresh a minute before expiry (or at half life for short TTLs), so a request never carries a stale token.
    const margin = Math.min(60_000, (this.tokenTtlSeconds * 1000) / 2);
    if (!this.token || now >= this.token.expiresAt - margin) {
      let response: { status: number; body: string };
      try {
        response = await this.request('PUT', TOKEN_PATH, { [TOKEN_TTL_HEADER]: String(this.tokenTtlSeconds) });
      } catch (error) {
        // No answer at all: a hop limit of 1 drops the token's answer to a container behind a bridge, while plain
        // GETs still get through. The AWS SDK goes over to v1 then too.
        return this.fallBackToV1(now, error instanceof Error ? error.message : String(error));
      }
      if (response.status !== 200 || response.body.trim() === '') {
        // Tokens unavailable (IMDSv1-only endpoint, or a proxy that refuses PUT).
        return this.fallBackToV1(now, `PUT ${TOKEN_PATH} answered ${response.status}${response.status === 200 ? ' with no token' : ''}`);
      }
      this.token = { value: response.body.trim(), expiresAt: now + this.tokenTtlSeconds * 1000 };
    }
    return { [TOKEN_HEADER]: this.token.value };
  }

  /** Goes on without tokens for the fallback window (IMDS_V1_FALLBACK_MS in limits.ts); no headers to send. */
  private fallBackToV1(now: number, reason: string): Record<string, string> {
    this.token = undefined;
    this.v1Until = now + IMDS_V1_FALLBACK_MS;
    this.v1Reason = reason;
    return {};
  }

  private async request(method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    const url = `${this.endpoint}${path}`;
    try {
      const response = await fetch(url, { method, headers, signal: AbortSignal.timeout(this.timeoutMs) });
      return { status: response.status, body: await response.text() };
    } catch (error) {
      const why = error instanceof Error && error.name === 'TimeoutError' ? `timed out after ${this.timeoutMs} ms` : describe(error);
      const v1 = method === 'GET' && !(TOKEN_HEADER in headers) && this.mode === 'v1' ? ` (over IMDSv1 without a token, because ${this.v1Reason})` : '';
      throw new ImdsError(`${method} ${url} failed: ${why}${v1}`);
    }
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}
