// An HTTP server on 127.0.0.1 for the local stand-ins: start on a free port, give its URL, stop.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export abstract class LoopbackServer {
  private server: http.Server | undefined;
  /** Named in errors: "the IMDS simulator is not started". */
  protected abstract readonly serverName: string;

  protected abstract handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;

  /** Listens on 127.0.0.1 (port 0 picks a free one); returns the base URL. */
  async start(port = 0): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    return this.url;
  }

  get url(): string {
    const address = this.server?.address() as AddressInfo | undefined;
    if (!address) throw new Error(`the ${this.serverName} is not started`);
    return `http://127.0.0.1:${address.port}`;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = undefined;
  }
}
