// The credentials relay against a container credentials stand-in whose identity changes between attempts.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testIdentity } from '../../localstack/credentials-stand-in.ts';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { RELAY_PATH, startCredentialsRelay } from './credentials-relay.ts';
import { accessKeyOf, fetchAsTask, fullUriEnv, log, logLines, standIn, start, useCredentialsStandIn } from './credentials-relay-harness.ts';
import { ENV_FULL_URI, ENV_RELATIVE_URI, ENV_TOKEN, ENV_TOKEN_FILE } from './credentials-upstream.ts';
import { REFRESH_MARGIN_MS } from '../shared/limits.ts';

useCredentialsStandIn();
let tmp: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'credentials-relay-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('startCredentialsRelay', () => {
  it('starts nothing when the agent has no container credentials', async () => {
    expect(await startCredentialsRelay({ agentEnv: {}, log })).toBeUndefined();
    expect(await startCredentialsRelay({ agentEnv: { [ENV_FULL_URI]: '', [ENV_RELATIVE_URI]: '', AWS_ACCESS_KEY_ID: 'x' }, log })).toBeUndefined();
  });

  it('starts nothing, and says why, when FULL_URI is not a URL: the task gets its environment unchanged', async () => {
    expect(await startCredentialsRelay({ agentEnv: { [ENV_FULL_URI]: 'not a url' }, log })).toBeUndefined();
    expect(logLines.join('')).toContain('AWS_CONTAINER_CREDENTIALS_FULL_URI=\\"not a url\\": expected an absolute http(s) URL');
  });

  it("gives the task this relay's FULL_URI and token, without RELATIVE_URI and the token file (SDKs prefer those)", async () => {
    const relay = await start();
    const given = { [ENV_RELATIVE_URI]: '/v2/credentials/old', [ENV_TOKEN_FILE]: '/var/run/token', [ENV_TOKEN]: 'old', PATH: '/usr/bin' };
    const env = relay.taskEnv(given);
    expect(env).toEqual({ PATH: '/usr/bin', [ENV_FULL_URI]: `http://127.0.0.1:${relay.port}${RELAY_PATH}`, [ENV_TOKEN]: relay.token });
    expect(given[ENV_RELATIVE_URI]).toBe('/v2/credentials/old');
    // The manifest records it (agent/store/manifest.ts): 32 to 128 hex digits.
    expect(relay.token).toMatch(/^[0-9a-f]{64}$/);
  });

  it("serves the agent's credentials, fetched from FULL_URI with the agent's token, and closes each connection", async () => {
    const relay = await start();
    const { status, body, connection } = await fetchAsTask(relay.taskEnv({}));
    expect(status).toBe(200);
    expect(body).toMatchObject({ AccessKeyId: 'ASIASTANDINA', SecretAccessKey: 'secret-of-A', Token: 'session-token-of-A' });
    expect(typeof body.Expiration).toBe('string');
    expect(connection).toBe('close');
    expect(standIn.requests).toEqual([`GET ${standIn.path} 200`]);
  });

  it('resolves RELATIVE_URI against the ECS endpoint, and prefers it to FULL_URI as the SDKs do', async () => {
    standIn.requireToken(undefined);
    const relay = await start({ agentEnv: { [ENV_RELATIVE_URI]: standIn.path, [ENV_FULL_URI]: 'http://127.0.0.1:9/elsewhere' }, ecsEndpoint: standIn.url });
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINA');
    expect(standIn.requests).toEqual([`GET ${standIn.path} 200`]);
  });

  it('reads the token file at every fetch, and prefers it to AUTHORIZATION_TOKEN', async () => {
    const tokenFile = path.join(tmp, 'token');
    await writeFile(tokenFile, 'file-token-1\n');
    standIn.requireToken('file-token-1');
    const clock = new FakeClock();
    standIn.setIdentity(testIdentity('A', new Date(clock.now() + 3600_000).toISOString()));
    const relay = await start({ agentEnv: { ...fullUriEnv('ignored'), [ENV_TOKEN_FILE]: tokenFile }, clock });
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINA');

    await writeFile(tokenFile, 'file-token-2');
    standIn.requireToken('file-token-2');
    standIn.setIdentity(testIdentity('B', new Date(clock.now() + 7200_000).toISOString()));
    clock.advance(3600_000 - REFRESH_MARGIN_MS);
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINB');
  });

  it('refuses a request without the token (401), with a wrong one (403), on another path or method, and asks upstream nothing', async () => {
    const relay = await start();
    const env = relay.taskEnv({});
    const missing = await fetchAsTask(env, null);
    expect(missing.status).toBe(401);
    expect(missing.body.code).toBe('Unauthorized');
    const wrong = await fetchAsTask(env, `${relay.token}x`);
    expect(wrong.status).toBe(403);
    expect(wrong.body.code).toBe('AccessDenied');
    expect((await fetch(`http://127.0.0.1:${relay.port}/other`, { headers: { authorization: relay.token } })).status).toBe(404);
    expect((await fetch(env[ENV_FULL_URI]!, { method: 'POST', headers: { authorization: relay.token } })).status).toBe(405);
    expect(standIn.requests).toEqual([]);
  });

  it('caches the credentials until shortly before their expiry, then fetches them again', async () => {
    const clock = new FakeClock();
    const expiry = clock.now() + 3600_000;
    standIn.setIdentity(testIdentity('A', new Date(expiry).toISOString()));
    const relay = await start({ clock });
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINA');
    standIn.setIdentity(testIdentity('B', new Date(expiry + 3600_000).toISOString()));
    clock.advance(expiry - REFRESH_MARGIN_MS - clock.now() - 1);
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINA');
    expect(standIn.count(200)).toBe(1);

    clock.advance(1);
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINB');
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINB');
    expect(standIn.count(200)).toBe(2);
  });

  it('does not cache credentials without an Expiration', async () => {
    standIn.addFault({ kind: 'body', body: JSON.stringify({ AccessKeyId: 'ASIANOEXPIRY', SecretAccessKey: 's', Token: 't' }), times: 1 });
    const relay = await start();
    expect(await accessKeyOf(relay)).toBe('ASIANOEXPIRY');
    expect(await accessKeyOf(relay)).toBe('ASIASTANDINA');
  });

  it('shares one upstream fetch between concurrent requests', async () => {
    const relay = await start();
    const keys = await Promise.all([1, 2, 3, 4].map(() => accessKeyOf(relay)));
    expect(keys).toEqual(['ASIASTANDINA', 'ASIASTANDINA', 'ASIASTANDINA', 'ASIASTANDINA']);
    expect(standIn.requests).toHaveLength(1);
  });
});

describe('a restore: the next attempt serves the same port and token from its own credentials', () => {
  it('serves identity B on the port and token the restored task still has', async () => {
    const first = await start();
    const restoredTaskEnv = first.taskEnv({ PATH: '/usr/bin' });
    expect((await fetchAsTask(restoredTaskEnv)).body.AccessKeyId).toBe('ASIASTANDINA');
    await first.close();

    // The new instance: a new role session behind a new token; the old token is refused there.
    standIn.setIdentity(testIdentity('B'));
    standIn.requireToken('token-of-the-next-ecs-task');
    const second = await start({ agentEnv: fullUriEnv('token-of-the-next-ecs-task'), listen: { port: first.port, token: first.token } });
    expect(second.port).toBe(first.port);
    expect(second.token).toBe(first.token);
    expect(second.taskEnv({ PATH: '/usr/bin' })).toEqual(restoredTaskEnv);
    const { status, body } = await fetchAsTask(restoredTaskEnv);
    expect(status).toBe(200);
    expect(body.AccessKeyId).toBe('ASIASTANDINB');
    expect(standIn.requests).toEqual([`GET ${standIn.path} 200`, `GET ${standIn.path} 200`]);
  });

  it('rejects with an error naming the port when it is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await expect(startCredentialsRelay({ agentEnv: fullUriEnv(), log, listen: { port, token: 'recorded-token' } })).rejects.toThrow(
        `credentials relay cannot listen on 127.0.0.1:${port}: the port is taken by another process`,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it.each([0, 70000, 1.5])('rejects a recorded port of %s', async (port) => {
    await expect(startCredentialsRelay({ agentEnv: fullUriEnv(), log, listen: { port, token: 't' } })).rejects.toThrow(
      `credentials relay port ${port}: expected`,
    );
  });
});
