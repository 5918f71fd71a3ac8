// An HTTP server on 127.0.0.1 for unit tests of the agent's S3 transport: it keeps every request it read, whole, and answers as the test says.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the server saw it: its head and the whole body it read. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** What the server answers to the n-th request (from 0), once it has read its body. */
export type RecordedAnswer = (n: number, req: http.IncomingMessage, res: http.ServerResponse) => void;

export interface RecordingServer {
  endpoint: string;
  /** Every request read so far, in order; `clear` empties it. */
  readonly seen: SeenRequest[];
  clear(): void;
  close(): Promise<void>;
}

/** Starts a server that records each request and answers it with `answer()` (read at each request). */
export async function startRecordingServer(answer: () => RecordedAnswer): Promise<RecordingServer> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const pieces: Buffer[] = [];
    req.on('data', (piece: Buffer) => pieces.push(piece));
    req.on('end', () => {
      const n = seen.length;
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(pieces) });
      answer()(n, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    clear: () => void seen.splice(0),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
