// A stand-in for the ECS container credentials endpoint: serves one identity, which tests can switch, behind an optional token.
import type http from 'node:http';
import { LoopbackServer } from './loopback-server.ts';

/** What the endpoint hands out, in the names ECS uses in its JSON answer. */
export interface ContainerIdentity {
  AccessKeyId: string;
  SecretAccessKey: string;
  Token: string;
  /** RFC 3339; without it the stand-in gives six hours from the request. */
  Expiration?: string;
  RoleArn?: string;
}

/** A misbehaviour the stand-in applies to the next `times` credential requests. */
export type CredentialsFault = { kind: 'status'; status: number; times: number } | { kind: 'body'; body: string; times: number };

export interface CredentialsStandInOptions {
  identity: ContainerIdentity;
  /** The `Authorization` value callers must send (AWS_CONTAINER_AUTHORIZATION_TOKEN); none: any caller. */
  token?: string;
  /** The path served, as in AWS_CONTAINER_CREDENTIALS_RELATIVE_URI. */
  path?: string;
}

export const DEFAULT_CREDENTIALS_PATH = '/v2/credentials/spotsnap-stand-in';
const DEFAULT_VALIDITY_MS = 6 * 3600_000;

/** A test identity whose every field names `name`: `identity('A').AccessKeyId` is `ASIASTANDINA`. */
export function testIdentity(name: string, expiration?: string): ContainerIdentity {
  return {
    AccessKeyId: `ASIASTANDIN${name}`,
    SecretAccessKey: `secret-of-${name}`,
    Token: `session-token-of-${name}`,
    ...(expiration === undefined ? {} : { Expiration: expiration }),
    RoleArn: `arn:aws:iam::000000000000:role/stand-in-${name}`,
  };
}

export class CredentialsStandIn extends LoopbackServer {
  protected readonly serverName = 'container credentials stand-in';
  private identity: ContainerIdentity;
  private token: string | undefined;
  private faults: CredentialsFault[] = [];
  readonly path: string;
  /** "METHOD path status" of every request, for assertions. */
  readonly requests: string[] = [];

  constructor(options: CredentialsStandInOptions) {
    super();
    this.identity = { ...options.identity };
    this.token = options.token;
    this.path = options.path ?? DEFAULT_CREDENTIALS_PATH;
  }

  /** The address to put in AWS_CONTAINER_CREDENTIALS_FULL_URI. */
  get fullUri(): string {
    return `${this.url}${this.path}`;
  }

  /** From now on hand out another identity (the next attempt's role session). */
  setIdentity(identity: ContainerIdentity): void {
    this.identity = { ...identity };
  }

  /** From now on require this token (undefined: none), as the next task's endpoint would. */
  requireToken(token: string | undefined): void {
    this.token = token;
  }

  addFault(fault: CredentialsFault): void {
    this.faults.push({ ...fault });
  }

  /** How many credential requests were answered with `status`. */
  count(status: number): number {
    return this.requests.filter((r) => r.endsWith(` ${status}`)).length;
  }

  protected async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const pathname = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const reply = (status: number, body: unknown): void => {
      this.requests.push(`${req.method} ${pathname} ${status}`);
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (pathname !== this.path) return reply(404, { code: 'NotFound', message: `no credentials at ${pathname}` });
    if (req.method !== 'GET') return reply(405, { code: 'MethodNotAllowed', message: 'credentials are read with GET' });
    if (this.token !== undefined && req.headers.authorization !== this.token) {
      return reply(req.headers.authorization === undefined ? 401 : 403, { code: 'AccessDenied', message: 'wrong or missing Authorization token' });
    }
    const fault = this.faults[0];
    if (fault) {
      if (--fault.times <= 0) this.faults.shift();
      if (fault.kind === 'status') return reply(fault.status, { code: 'Simulated', message: 'simulated failure' });
      return reply(200, fault.body);
    }
    const Expiration = this.identity.Expiration ?? new Date(Date.now() + DEFAULT_VALIDITY_MS).toISOString();
    return reply(200, { ...this.identity, Expiration });
  }
}
