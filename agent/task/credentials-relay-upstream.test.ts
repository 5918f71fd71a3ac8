// The credentials relay when the agent's own container credentials fail: retries, 5xx answers with a JSON error, cached credentials.
import { describe, expect, it } from 'vitest';
import { CredentialsStandIn, testIdentity } from '../../localstack/credentials-stand-in.ts';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { accessKeyOf, AGENT_TOKEN, fetchAsTask, fullUriEnv, logLines, standIn, start, useCredentialsStandIn } from './credentials-relay-harness.ts';
import { ENV_FULL_URI } from './credentials-upstream.ts';
import { REFRESH_MARGIN_MS } from '../shared/limits.ts';

useCredentialsStandIn();

describe('upstream failures answer 5xx with a JSON error, and the relay goes on', () => {
  it('retries once after an upstream 500', async () => {
    standIn.addFault({ kind: 'status', status: 500, times: 1 });
    const relay = await start({ clock: new FakeClock() });
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINA');
    expect(standIn.requests).toEqual([`GET ${standIn.path} 500`, `GET ${standIn.path} 200`]);
  });

  it('answers 502 when upstream keeps failing, and serves again once it recovers', async () => {
    standIn.addFault({ kind: 'status', status: 503, times: 2 });
    const relay = await start({ clock: new FakeClock() });
    const failed = await fetchAsTask(relay.taskEnv({}));
    expect(failed.status).toBe(502);
    expect(failed.body.code).toBe('UpstreamUnavailable');
    expect(failed.body.message).toContain('answered 503');
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINA');
  });

  it("answers 502 when upstream refuses the agent's token", async () => {
    const relay = await start({ agentEnv: fullUriEnv('not-the-agents-token'), clock: new FakeClock() });
    const failed = await fetchAsTask(relay.taskEnv({}));
    expect(failed.status).toBe(502);
    expect(failed.body.message).toContain('answered 403');
  });

  it.each([
    ['not JSON', 'not json', 'not JSON'],
    ['no keys', '{"Token":"t"}', 'without AccessKeyId and SecretAccessKey'],
    ['a bad Expiration', '{"AccessKeyId":"a","SecretAccessKey":"s","Expiration":"soon"}', 'Expiration that is not a date: \\"soon\\"'],
  ])('answers 502 for an upstream answer with %s', async (_name, body, message) => {
    standIn.addFault({ kind: 'body', body, times: 2 });
    const relay = await start({ clock: new FakeClock() });
    const failed = await fetchAsTask(relay.taskEnv({}));
    expect(failed.status).toBe(502);
    expect(failed.body.message).toContain(message.replaceAll('\\"', '"'));
  });

  it('answers 502 when upstream cannot be reached', async () => {
    const closed = new CredentialsStandIn({ identity: testIdentity('A') });
    await closed.start();
    const fullUri = closed.fullUri;
    await closed.stop();
    const relay = await start({ agentEnv: { [ENV_FULL_URI]: fullUri }, clock: new FakeClock() });
    const failed = await fetchAsTask(relay.taskEnv({}));
    expect(failed.status).toBe(502);
    expect(failed.body.message).toContain('could not be reached');
  });

  it('answers 504 when upstream does not answer in time', async () => {
    const timedOut: typeof fetch = () => Promise.reject(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    const relay = await start({ fetchImpl: timedOut, clock: new FakeClock() });
    const failed = await fetchAsTask(relay.taskEnv({}));
    expect(failed.status).toBe(504);
    expect(failed.body.code).toBe('UpstreamTimeout');
  });

  it('serves cached credentials that are still valid when their refresh fails', async () => {
    const clock = new FakeClock();
    const expiry = clock.now() + 3600_000;
    standIn.setIdentity(testIdentity('A', new Date(expiry).toISOString()));
    const relay = await start({ clock });
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINA');
    clock.advance(expiry - REFRESH_MARGIN_MS - clock.now());
    standIn.addFault({ kind: 'status', status: 500, times: 2 });
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINA');
    expect(standIn.count(500)).toBe(2);
  });

  it('logs neither tokens nor secrets', async () => {
    const relay = await start();
    await accessKeyOf(relay);
    await fetchAsTask(relay.taskEnv({}), 'wrong');
    const logged = logLines.join('');
    expect(logged).toContain('credentials relay listening');
    for (const secret of [relay.token, AGENT_TOKEN, 'secret-of-A', 'session-token-of-A']) expect(logged).not.toContain(secret);
  });
});
