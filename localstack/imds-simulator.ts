// An EC2 instance metadata simulator: IMDSv2 tokens and the spot notice in EC2's format, with a control API for tests.
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { LoopbackServer } from './loopback-server.ts';

/** A misbehaviour the simulator applies to the next `times` spot-notice requests. */
export type ImdsFault =
  | { kind: 'status'; status: number; times: number }
  | { kind: 'body'; body: string; times: number }
  | { kind: 'delay'; ms: number; times: number };

export interface ImdsSimulatorOptions {
  /** Refuse metadata requests without a valid token (IMDSv2 only), as hardened instances do. */
  requireTokens?: boolean;
  /** Answer the token call with 404, as an IMDSv1-only service would. */
  tokensUnavailable?: boolean;
}

export const CONTROL_PREFIX = '/spotsnap-sim';

/** EC2 writes the notice time to the second, in UTC: 2026-11-21T09:05:00Z. */
export function ec2Time(ms: number): string {
  return `${new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19)}Z`;
}

export class ImdsSimulator extends LoopbackServer {
  protected readonly serverName = 'IMDS simulator';
  private readonly tokens = new Map<string, number>();
  private notice: { visibleAt: number; action: string; time: string } | undefined;
  private faults: ImdsFault[] = [];
  requireTokens: boolean;
  tokensUnavailable: boolean;
  /** Counts of requests by "METHOD path status", for assertions. */
  readonly requests: string[] = [];

  constructor(options: ImdsSimulatorOptions = {}) {
    super();
    this.requireTokens = options.requireTokens ?? false;
    this.tokensUnavailable = options.tokensUnavailable ?? false;
  }

  /** Posts a notice `inMs` from now, whose deadline is `noticeSeconds` after it appears (EC2 gives 120). */
  scheduleNotice(inMs: number, action: 'terminate' | 'stop' | 'hibernate' = 'terminate', noticeSeconds = 120): void {
    const visibleAt = Date.now() + inMs;
    this.notice = { visibleAt, action, time: ec2Time(visibleAt + noticeSeconds * 1000) };
  }

  /** A new instance has no notice. */
  clearNotice(): void {
    this.notice = undefined;
  }

  addFault(fault: ImdsFault): void {
    this.faults.push({ ...fault });
  }

  /** Invalidates every token handed out, as their expiry would. */
  expireTokens(): void {
    this.tokens.clear();
  }

  protected async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const reply = (status: number, body = '', headers: Record<string, string> = {}): void => {
      this.requests.push(`${req.method} ${url.pathname} ${status}`);
      res.writeHead(status, { 'content-type': 'text/plain', ...headers });
      res.end(body);
    };
    if (url.pathname.startsWith(CONTROL_PREFIX)) return this.control(req, url, reply);

    if (url.pathname === '/latest/api/token') {
      if (req.method !== 'PUT') return reply(405);
      if (this.tokensUnavailable) return reply(404);
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return reply(400);
      const token = randomBytes(24).toString('base64url');
      this.tokens.set(token, Date.now() + ttl * 1000);
      return reply(200, token, { 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
    }
    if (req.method !== 'GET') return reply(405);
    const token = req.headers['x-aws-ec2-metadata-token'];
    if (typeof token === 'string') {
      const expiry = this.tokens.get(token);
      if (expiry === undefined || expiry < Date.now()) return reply(401);
    } else if (this.requireTokens) {
      return reply(401);
    }

    if (url.pathname === '/latest/meta-data/spot/instance-action') {
      const fault = this.faults[0];
      if (fault) {
        if (--fault.times <= 0) this.faults.shift();
        if (fault.kind === 'status') return reply(fault.status, 'simulated failure');
        if (fault.kind === 'body') return reply(200, fault.body, { 'content-type': 'application/json' });
        await new Promise((r) => setTimeout(r, fault.ms));
      }
      if (!this.notice || Date.now() < this.notice.visibleAt) return reply(404, 'Not Found');
      return reply(200, JSON.stringify({ action: this.notice.action, time: this.notice.time }), { 'content-type': 'application/json' });
    }
    if (url.pathname === '/latest/meta-data/instance-id') return reply(200, 'i-0123456789abcdef0');
    return reply(404, 'Not Found');
  }

  /**
   * The control API: POST /spotsnap-sim/interrupt?in=SECONDS[&action=terminate][&notice=120],
   * POST /spotsnap-sim/clear, POST /spotsnap-sim/require-tokens?on=true, POST /spotsnap-sim/fail?status=500&times=3,
   * GET /spotsnap-sim/requests.
   */
  private control(req: http.IncomingMessage, url: URL, reply: (status: number, body?: string) => void): void {
    const action = url.pathname.slice(CONTROL_PREFIX.length);
    const q = url.searchParams;
    if (action === '/requests' && req.method === 'GET') {
      reply(200, JSON.stringify(this.requests));
      return;
    }
    if (req.method !== 'POST') {
      reply(405, 'control calls are POST');
      return;
    }
    switch (action) {
      case '/interrupt': {
        const seconds = Number(q.get('in') ?? '0');
        const kind = (q.get('action') ?? 'terminate') as 'terminate' | 'stop' | 'hibernate';
        const notice = Number(q.get('notice') ?? '120');
        if (!Number.isFinite(seconds) || seconds < 0 || !['terminate', 'stop', 'hibernate'].includes(kind) || !(notice > 0)) {
          reply(400, 'expected ?in=SECONDS (>= 0), &action=terminate|stop|hibernate, &notice=SECONDS (> 0)');
          return;
        }
        this.scheduleNotice(seconds * 1000, kind, notice);
        reply(200, JSON.stringify(this.notice));
        return;
      }
      case '/clear':
        this.clearNotice();
        reply(200, 'cleared');
        return;
      case '/require-tokens':
        this.requireTokens = q.get('on') !== 'false';
        reply(200, String(this.requireTokens));
        return;
      case '/fail': {
        const status = Number(q.get('status') ?? '500');
        const times = Number(q.get('times') ?? '1');
        if (!Number.isInteger(status) || status < 100 || status > 599 || !Number.isInteger(times) || times < 1) {
          reply(400, 'expected ?status=100..599&times=N (>= 1)');
          return;
        }
        this.addFault({ kind: 'status', status, times });
        reply(200, 'ok');
        return;
      }
      default:
        reply(404, `unknown control call ${action}`);
        return;
    }
  }
}
