import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ImdsSimulator } from '../localstack/imds-simulator.ts';
import { FakeClock } from '../test/support/fake-clock.ts';
import { ImdsClient, ImdsError } from './imds-client.ts';
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

  it('reports a connection failure with the address', async () => {
    const closed = new ImdsSimulator();
    const closedUrl = await closed.start();
    await closed.stop();
    await expect(new ImdsClient({ endpoint: closedUrl }).spotNotice()).rejects.toThrow(new RegExp(`PUT ${closedUrl}/latest/api/token failed`));
  });
});
