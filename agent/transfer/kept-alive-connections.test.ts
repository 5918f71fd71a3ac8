import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DISCARD_BODY, sendDirect, type SignedRequest } from './direct-http-send.ts';

/** How a raw server answers the n-th request on a connection (from 0): bytes to write, or 'drop' to close without answering. */
type Answer = (request: number, connection: number) => string | 'drop';

interface RawServer {
  port: number;
  connections: number;
  requests: number;
  /** Ends every open connection from the server's side; resolves once they are closed. */
  closeConnections(): Promise<void>;
  close(): Promise<void>;
}

const servers: RawServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** An HTTP/1.1 server that reads requests without bodies (one head after another) and answers as `answer` says. */
async function rawServer(answer: Answer): Promise<RawServer> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, requests: 0 };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const connection = state.connections++;
    let onThis = 0;
    let pending = '';
    socket.on('data', (data) => {
      pending += data.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        pending = pending.slice(end + 4);
        state.requests++;
        const reply = answer(onThis++, connection);
        if (reply === 'drop') socket.destroy();
        else socket.write(reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const raw: RawServer = {
    port: (server.address() as AddressInfo).port,
    get connections() {
      return state.connections;
    },
    get requests() {
      return state.requests;
    },
    closeConnections: () =>
      Promise.all(
        [...sockets].map(
          (s) =>
            new Promise<void>((resolve) => {
              s.once('close', () => resolve());
              s.end();
            }),
        ),
      ).then(() => undefined),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  servers.push(raw);
  return raw;
}

const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
const get = (port: number): SignedRequest => ({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port, path: '/k', headers: {} });

describe('kept-alive connections', () => {
  it('carries requests one after another on one connection when each answer ends where its length says', async () => {
    const server = await rawServer(() => OK);
    for (let i = 0; i < 3; i++) expect((await sendDirect(get(server.port), DISCARD_BODY)).statusCode).toBe(200);
    expect(server.requests).toBe(3);
    expect(server.connections).toBe(1);
  });

  it('does not keep a connection the server says it closes, nor one whose answer has bytes past its length', async () => {
    const closing = await rawServer(() => 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok');
    await sendDirect(get(closing.port), DISCARD_BODY);
    await sendDirect(get(closing.port), DISCARD_BODY);
    expect(closing.connections).toBe(2);
    // `close` among other tokens of the header is still a close.
    const closingAmongOthers = await rawServer(() => 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nConnection: Upgrade, Close\r\n\r\nok');
    await sendDirect(get(closingAmongOthers.port), DISCARD_BODY);
    await sendDirect(get(closingAmongOthers.port), DISCARD_BODY);
    expect(closingAmongOthers.connections).toBe(2);
    const overlong = await rawServer(() => `${OK}extra`);
    await sendDirect(get(overlong.port), DISCARD_BODY);
    await sendDirect(get(overlong.port), DISCARD_BODY);
    expect(overlong.connections).toBe(2);
  });

  it('does not keep a connection after a refusal of a request with a body (the server may not have read it)', async () => {
    const server = await rawServer((_request, connection) => (connection === 0 ? 'HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n' : OK));
    const put: SignedRequest = { ...get(server.port), method: 'PUT', headers: { 'content-length': '3' } };
    expect((await sendDirect(put, DISCARD_BODY, undefined, { body: [Buffer.from('abc')] })).statusCode).toBe(403);
    expect((await sendDirect(get(server.port), DISCARD_BODY)).statusCode).toBe(200);
    expect(server.connections).toBe(2);
  });

  it('answers the next request when the server closed the kept connection while it waited', async () => {
    const server = await rawServer(() => OK);
    const first = await sendDirect(get(server.port), DISCARD_BODY);
    expect(first.statusCode).toBe(200);
    // The server closes its idle side, as servers do after their keep-alive timeout.
    await server.closeConnections();
    expect((await sendDirect(get(server.port), DISCARD_BODY)).statusCode).toBe(200);
    expect(server.connections).toBe(2);
  });

  it('sends again at once on a new connection when a kept one is closed by the server as the request goes out', async () => {
    // The second request on the first connection is dropped unanswered, as a server closing an idle connection
    // at that moment would: the request must still get its answer, from a second connection.
    const server = await rawServer((request, connection) => (connection === 0 && request === 1 ? 'drop' : OK));
    await sendDirect(get(server.port), DISCARD_BODY);
    const second = await sendDirect(get(server.port), DISCARD_BODY);
    expect(second.statusCode).toBe(200);
    expect(server.connections).toBe(2);
    expect(server.requests).toBe(3);
  });

  it('fails, for the SDK to retry, when a new connection is dropped before it answers', async () => {
    const server = await rawServer(() => 'drop');
    await expect(sendDirect(get(server.port), DISCARD_BODY)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(server.connections).toBe(1);
  });
});
