// The EC2 instance metadata protocol in one place: IMDSv2 tokens with refresh, a new token on 401, IMDSv1 fallback.
import { systemClock, type Clock } from './clock.ts';
import { parseSpotNotice, type SpotNotice } from './spot-notice.ts';

export const TOKEN_PATH = '/latest/api/token';
export const SPOT_ACTION_PATH = '/latest/meta-data/spot/instance-action';
export const TOKEN_TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
export const TOKEN_HEADER = 'x-aws-ec2-metadata-token';

export interface ImdsClientOptions {
  /** Base URL, e.g. http://169.254.169.254 (AWS_EC2_METADATA_SERVICE_ENDPOINT). */
  endpoint: string;
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Lifetime asked for each token. */
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

/** How the client talks to the service: with tokens (v2), or without after the token call was refused (v1). */
export type ImdsMode = 'v2' | 'v1';

export class ImdsClient {
  private readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly tokenTtlSeconds: number;
  private readonly clock: Clock;
  private token: Token | undefined;
  private v1Until = 0;

  constructor(options: ImdsClientOptions) {
    this.endpoint = options.endpoint.replace(/\/$/, '');
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.tokenTtlSeconds = options.tokenTtlSeconds ?? 21600;
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
    if (response.status !== 200) throw new ImdsError(`GET ${SPOT_ACTION_PATH} answered ${response.status}`, response.status);
    return parseSpotNotice(response.body);
  }

  /** GET a metadata path; a 401 drops the token and tries once more with a new one. */
  async get(path: string): Promise<{ status: number; body: string }> {
    let response = await this.request('GET', path, await this.tokenHeaders());
    if (response.status === 401) {
      this.token = undefined;
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
      const response = await this.request('PUT', TOKEN_PATH, { [TOKEN_TTL_HEADER]: String(this.tokenTtlSeconds) });
      if (response.status !== 200 || response.body.trim() === '') {
        // Tokens unavailable (IMDSv1-only endpoint, or a proxy that refuses PUT): go on without for five minutes.
        this.token = undefined;
        this.v1Until = now + 5 * 60_000;
        return {};
      }
      this.token = { value: response.body.trim(), expiresAt: now + this.tokenTtlSeconds * 1000 };
    }
    return { [TOKEN_HEADER]: this.token.value };
  }

  private async request(method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
    const url = `${this.endpoint}${path}`;
    try {
      const response = await fetch(url, { method, headers, signal: AbortSignal.timeout(this.timeoutMs) });
      return { status: response.status, body: await response.text() };
    } catch (error) {
      const why = error instanceof Error && error.name === 'TimeoutError' ? `timed out after ${this.timeoutMs} ms` : describe(error);
      throw new ImdsError(`${method} ${url} failed: ${why}`);
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
