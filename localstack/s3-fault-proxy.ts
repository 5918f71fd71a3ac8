// An HTTP proxy in front of the S3 emulator that injects faults (errors, resets, delays) and records every request.
import http from 'node:http';
import { LoopbackServer } from './loopback-server.ts';

/** Which requests a fault applies to. */
export interface FaultMatch {
  method?: string;
  /** A query parameter the request must carry, e.g. 'partNumber' (UploadPart) or 'uploads' (CreateMultipartUpload). */
  queryParam?: string;
  /** The request path must contain this, e.g. '/packs/' (pack uploads) or 'manifest.json'. */
  pathIncludes?: string;
}

export type FaultAction =
  /** Answer with an S3 error document: 500 InternalError, 503 SlowDown, ... */
  | { kind: 'status'; status: number; code: string }
  /** Read this many bytes of the request body, then drop the connection. */
  | { kind: 'reset'; afterBytes: number }
  /** Pass the request on, and the answer's status and headers back, but drop the connection after this many body bytes. */
  | { kind: 'cut-response'; afterBytes: number }
  /** Hold the request this long before passing it on. */
  | { kind: 'delay'; ms: number };

export interface Fault {
  match: FaultMatch;
  action: FaultAction;
  /** How many matching requests it hits; Infinity for all. */
  times: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  /** The request's x-amz-server-side-encryption* and x-amz-checksum-* / x-amz-sdk-checksum-* headers. */
  headers: Record<string, string>;
  /** The status passed back, or the fault injected. */
  outcome: number | 'reset' | 'cut-response';
}

export class S3FaultProxy extends LoopbackServer {
  protected readonly serverName = 'S3 fault proxy';
  private faults: Fault[] = [];
  private readonly upstream: URL;
  readonly requests: RecordedRequest[] = [];
  /** How many faults were injected, by kind (status code, 'reset', 'delay'). */
  readonly injected = new Map<string, number>();

  constructor(upstream: string) {
    super();
    this.upstream = new URL(upstream);
  }

  addFault(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  clearFaults(): void {
    this.faults = [];
  }

  private takeFault(req: http.IncomingMessage, url: URL): FaultAction | undefined {
    const index = this.faults.findIndex(
      ({ match }) =>
        (!match.method || match.method === req.method) &&
        (!match.queryParam || url.searchParams.has(match.queryParam)) &&
        (!match.pathIncludes || url.pathname.includes(match.pathIncludes)),
    );
    if (index < 0) return undefined;
    const fault = this.faults[index]!;
    if (--fault.times <= 0) this.faults.splice(index, 1);
    const kind = fault.action.kind === 'status' ? String(fault.action.status) : fault.action.kind;
    this.injected.set(kind, (this.injected.get(kind) ?? 0) + 1);
    return fault.action;
  }

  protected async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (/^x-amz-(server-side-encryption|checksum-|sdk-checksum)/.test(name) && typeof value === 'string') headers[name] = value;
    }
    const record: RecordedRequest = { method: req.method ?? '', path: url.pathname, query: url.search, headers, outcome: 0 };
    this.requests.push(record);
    const action = this.takeFault(req, url);

    if (action?.kind === 'status') {
      req.resume();
      await new Promise((resolve) => req.once('end', resolve));
      record.outcome = action.status;
      res.writeHead(action.status, { 'content-type': 'application/xml' });
      res.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${action.code}</Code><Message>injected by the fault proxy</Message></Error>`);
      return;
    }
    if (action?.kind === 'reset') {
      record.outcome = 'reset';
      let seen = 0;
      req.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen >= action.afterBytes) req.socket.destroy();
      });
      req.once('end', () => req.socket.destroy());
      return;
    }
    if (action?.kind === 'delay') await new Promise((resolve) => setTimeout(resolve, action.ms));

    const upstream = http.request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers },
      (response) => {
        record.outcome = action?.kind === 'cut-response' ? 'cut-response' : (response.statusCode ?? 0);
        res.writeHead(response.statusCode ?? 502, response.headers);
        if (action?.kind !== 'cut-response') return void response.pipe(res);
        let sent = 0;
        response.on('data', (chunk: Buffer) => {
          const left = action.afterBytes - sent;
          if (left <= 0) return;
          sent += Math.min(left, chunk.length);
          res.write(chunk.subarray(0, left), () => sent >= action.afterBytes && res.socket?.destroy());
        });
        response.on('end', () => res.socket?.destroy());
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }
}
