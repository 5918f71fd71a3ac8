import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ImdsSimulator } from '../../localstack/imds-simulator.ts';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { ImdsClient, ImdsError, TOKEN_HEADER, TOKEN_PATH, TOKEN_TTL_HEADER } from './imds-client.ts';
import { IMDS_V1_FALLBACK_MS } from '../shared/limits.ts';
import { MalformedNoticeError } from './spot-notice.ts';

const simulator = new ImdsSimulator();
let url: string;

beforeAll(async () => {
  url = await simulator.start();
});
afterAll(() => simulator.stop());
beforeEach(() => {
  simulator.clearNotice();
  simulator.requireTokens = true;
  simulator.tokensUnavailable = false;
  simulator.requests.length = 0;
});

describe('ImdsClient.spotNotice', () => {
  it('answers null while no notice is posted (404)', async () => {
    const client = new ImdsClient({ endpoint: url });
    expect(await client.spotNotice()).toBeNull();
    expect(simulator.requests).toEqual(['PUT /latest/api/token 200', 'GET /latest/meta-data/spot/instance-action 404']);
  });

  it('returns the notice with its deadline once posted', async () => {
    simulator.scheduleNotice(0, 'terminate', 120);
    const notice = await new ImdsClient({ endpoint: url }).spotNotice();
    expect(notice?.action).toBe('terminate');
    expect(notice?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(notice!.deadline - Date.now()).toBeGreaterThan(110_000);
    expect(notice!.id).toBe(`terminate@${notice!.time}`);
  });

  it.each(['stop', 'hibernate'] as const)('returns a %s notice like a terminate notice', async (action) => {
    simulator.scheduleNotice(0, action, 120);
    expect((await new ImdsClient({ endpoint: url }).spotNotice())?.action).toBe(action);
  });

  it('reuses its token, and refreshes it shortly before expiry', async () => {
    const clock = new FakeClock();
    const client = new ImdsClient({ endpoint: url, clock, tokenTtlSeconds: 600 });
    await client.spotNotice();
    await client.spotNotice();
    clock.advance(541_000); // within a minute of expiry
    await client.spotNotice();
    expect(simulator.requests.filter((r) => r.startsWith('PUT'))).toHaveLength(2);
  });

  it('gets a new token after a 401 and retries once', async () => {
    const client = new ImdsClient({ endpoint: url });
    await client.spotNotice();
    simulator.expireTokens();
    expect(await client.spotNotice()).toBeNull();
    expect(simulator.requests.slice(2)).toEqual([
      'GET /latest/meta-data/spot/instance-action 401',
      'PUT /latest/api/token 200',
      'GET /latest/meta-data/spot/instance-action 404',
    ]);
  });

  it('falls back to IMDSv1 when tokens are unavailable', async () => {
    simulator.requireTokens = false;
    simulator.tokensUnavailable = true;
    const client = new ImdsClient({ endpoint: url });
    expect(await client.spotNotice()).toBeNull();
    expect(client.mode).toBe('v1');
    await client.spotNotice();
    expect(simulator.requests.filter((r) => r.startsWith('PUT'))).toHaveLength(1);
  });

  it('rejects a malformed notice body, naming it', async () => {
    simulator.addFault({ kind: 'body', body: '{"action":"terminate","time":', times: 1 });
    await expect(new ImdsClient({ endpoint: url }).spotNotice()).rejects.toThrow(MalformedNoticeError);
    simulator.addFault({ kind: 'body', body: '{"action":"explode","time":"2026-11-21T09:00:00Z"}', times: 1 });
    await expect(new ImdsClient({ endpoint: url }).spotNotice()).rejects.toThrow(/action is not terminate, stop or hibernate/);
  });

  it('rejects a 500 with the status', async () => {
    simulator.addFault({ kind: 'status', status: 500, times: 1 });
    const error = await new ImdsClient({ endpoint: url }).spotNotice().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImdsError);
    expect((error as ImdsError).status).toBe(500);
  });

  it('times out a request that hangs', async () => {
    simulator.addFault({ kind: 'delay', ms: 1500, times: 1 });
    await expect(new ImdsClient({ endpoint: url, timeoutMs: 200 }).spotNotice()).rejects.toThrow(/timed out after 200 ms/);
  });

  it('reports a connection failure with the address, after trying without a token too', async () => {
    const closed = new ImdsSimulator();
    const closedUrl = await closed.start();
    await closed.stop();
    await expect(new ImdsClient({ endpoint: closedUrl }).spotNotice()).rejects.toThrow(
      new RegExp(`GET ${closedUrl}/latest/meta-data/spot/instance-action failed: .*because PUT ${closedUrl}/latest/api/token failed`),
    );
  });
});

/** What the path in front of the service does with the token call: answer it, never answer it, or reset it. */
type TokenPath = 'pass' | 'drop' | 'reset';

/**
 * The network between a container and the service, as a hop limit of 1 makes it: the token PUT's answer never
 * arrives (or the connection breaks), while GETs reach the simulator and come back.
 */
class TokenPathFront {
  tokenPath: TokenPath = 'pass';
  /** Token calls that reached this front, whatever became of them. */
  tokenCalls = 0;
  private server: http.Server | undefined;

  async start(target: string): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(target, req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(target: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method === 'PUT' && req.url === TOKEN_PATH) {
      this.tokenCalls++;
      if (this.tokenPath === 'drop') return; // held until the client gives up
      if (this.tokenPath === 'reset') return void req.socket.destroy();
    }
    const headers: Record<string, string> = {};
    for (const name of [TOKEN_HEADER, TOKEN_TTL_HEADER]) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const answer = await fetch(`${target}${req.url}`, { method: req.method, headers });
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
    res.end(await answer.text());
  }
}

/**
 * The client's limit where each request goes through the front and the simulator, both in this process: long
 * enough that a busy worker never times out an answered request; the dropped token calls wait it out.
 */
const TWO_HOPS_TIMEOUT_MS = 1000;

describe('ImdsClient when the token call gets no answer (hop limit 1)', () => {
  const front = new TokenPathFront();
  let frontUrl: string;
  beforeAll(async () => {
    frontUrl = await front.start(url);
  });
  afterAll(() => front.stop());
  beforeEach(() => {
    front.tokenCalls = 0;
    simulator.requireTokens = false;
  });

  it.each(['drop', 'reset'] as const)('reads the notice over IMDSv1 when the token call meets %s, and stays on v1', async (tokenPath) => {
    front.tokenPath = tokenPath;
    simulator.scheduleNotice(0, 'terminate', 120);
    const client = new ImdsClient({ endpoint: frontUrl, timeoutMs: TWO_HOPS_TIMEOUT_MS });
    expect((await client.spotNotice())?.action).toBe('terminate');
    expect(client.mode).toBe('v1');
    expect((await client.spotNotice())?.action).toBe('terminate');
    expect(front.tokenCalls).toBe(1);
    expect(simulator.requests).toEqual(['GET /latest/meta-data/spot/instance-action 200', 'GET /latest/meta-data/spot/instance-action 200']);
  });

  it('tries tokens again once the fallback window has passed', async () => {
    front.tokenPath = 'drop';
    const clock = new FakeClock();
    const client = new ImdsClient({ endpoint: frontUrl, timeoutMs: TWO_HOPS_TIMEOUT_MS, clock });
    expect(await client.spotNotice()).toBeNull();
    front.tokenPath = 'pass';
    clock.advance(IMDS_V1_FALLBACK_MS - 1);
    await client.spotNotice();
    expect(front.tokenCalls).toBe(1);
    clock.advance(1);
    expect(await client.spotNotice()).toBeNull();
    expect(client.mode).toBe('v2');
    expect(simulator.requests.slice(-2)).toEqual(['PUT /latest/api/token 200', 'GET /latest/meta-data/spot/instance-action 404']);
  });

  it('leaves v1 at once when a request without a token is refused (401), and reads the notice with a token', async () => {
    front.tokenPath = 'drop';
    const client = new ImdsClient({ endpoint: frontUrl, timeoutMs: TWO_HOPS_TIMEOUT_MS });
    expect(await client.spotNotice()).toBeNull();
    expect(client.mode).toBe('v1');
    simulator.requireTokens = true;
    front.tokenPath = 'pass';
    simulator.scheduleNotice(0, 'stop', 120);
    simulator.requests.length = 0;
    expect((await client.spotNotice())?.action).toBe('stop');
    expect(client.mode).toBe('v2');
    expect(simulator.requests).toEqual([
      'GET /latest/meta-data/spot/instance-action 401',
      'PUT /latest/api/token 200',
      'GET /latest/meta-data/spot/instance-action 200',
    ]);
  });

  it('names the hop limit when tokens are required and their answer never arrives', async () => {
    front.tokenPath = 'drop';
    simulator.requireTokens = true;
    const error = await new ImdsClient({ endpoint: frontUrl, timeoutMs: TWO_HOPS_TIMEOUT_MS }).spotNotice().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImdsError);
    expect((error as ImdsError).status).toBe(401);
    expect((error as Error).message).toMatch(
      new RegExp(`answered 401 to a request without a token, and the token call failed \\(PUT .* timed out after ${TWO_HOPS_TIMEOUT_MS} ms\\).*hop limit to 2`),
    );
  });
});
