// Serves the current attempt's container credentials to the task on 127.0.0.1, so that a restored task's credentials keep working.
//
// CRIU restores the task's environment as it was dumped: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (or FULL_URI and its
// token) would still name the old ECS task, which the new instance does not know. So the task is launched with
// AWS_CONTAINER_CREDENTIALS_FULL_URI on this relay instead, and the agent of every later attempt serves the relay on
// the same port with the same token, from its own (current) container credentials.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { LogEvent } from '../shared/log-events.ts';
import { systemClock, type Clock } from '../shared/clock.ts';
import { RELAY_HEADERS_TIMEOUT_MS, RELAY_REQUEST_TIMEOUT_MS } from '../shared/limits.ts';
import {
  ECS_CREDENTIALS_ENDPOINT,
  ENV_FULL_URI,
  ENV_RELATIVE_URI,
  ENV_TOKEN,
  ENV_TOKEN_FILE,
  UpstreamCredentials,
  UpstreamError,
  upstreamOf,
  type Upstream,
} from './credentials-upstream.ts';

/** The one path the relay serves. */
export const RELAY_PATH = '/spotsnap/v1/credentials';

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
  private listeningPort = 0;
  private readonly credentials: UpstreamCredentials;
  readonly token: string;
  private readonly log: Logger;

  constructor(credentials: UpstreamCredentials, token: string, log: Logger) {
    this.credentials = credentials;
    this.token = token;
    this.log = log;
    this.expectedToken = Buffer.from(token);
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        // Never reached by design; kept so a bug answers 500 instead of ending the agent.
        this.log.error({ event: LogEvent.credentialsRelayError, err: error }, 'credentials relay: unexpected error');
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
    this.server.on('error', (error) => this.log.warn({ event: LogEvent.credentialsRelayServerError, err: error }, 'credentials relay: server error'));
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
    if (!sameToken(authorization, this.expectedToken))
      return this.reply(res, 403, { code: 'AccessDenied', message: `wrong Authorization token (${ENV_TOKEN})` });
    try {
      const credentials = await this.credentials.get();
      return this.reply(res, 200, credentials.body);
    } catch (error) {
      const status = error instanceof UpstreamError ? error.status : 502;
      const message = error instanceof Error ? error.message : String(error);
      this.log.warn(
        { event: LogEvent.credentialsUpstreamFailed, upstream: this.credentials.kind, status, error: message },
        'credentials relay: the agent could not get its container credentials',
      );
      return this.reply(res, status, { code: status === 504 ? 'UpstreamTimeout' : 'UpstreamUnavailable', message });
    }
  }
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
    options.log.warn(
      { event: LogEvent.credentialsRelayNotStarted, error: (error as Error).message },
      'credentials relay not started: the container credentials settings are unusable',
    );
    return undefined;
  }
  if (upstream === undefined) return undefined;
  if (options.listen) checkListen(options.listen);
  const token = options.listen?.token ?? randomBytes(32).toString('hex');
  const credentials = new UpstreamCredentials(upstream, options.log, options.fetchImpl ?? fetch, options.clock ?? systemClock);
  const relay = new Relay(credentials, token, options.log);
  await relay.listen(options.listen?.port ?? 0);
  options.log.info(
    { event: LogEvent.credentialsRelayListening, port: relay.port, upstream: upstream.kind, reused: options.listen !== undefined },
    'credentials relay listening on 127.0.0.1 for the task',
  );
  return relay;
}
