// Makes the socket pair of `criu dump --ps-socket`: CRIU's end to hand over as a descriptor, the agent's end read with `onread` straight into buffers the agent names.
//
// Node's own stdio socket pairs cannot take `onread`, so the pair is made through a UNIX socket in a fresh
// directory only this user may enter: the agent connects to it once, the accepted end goes to CRIU, and the
// directory is removed before the dump starts.
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The longest socket path Linux takes (sun_path holds 108 bytes with its terminating NUL), with a margin. */
const MAX_SOCKET_PATH_BYTES = 100;

export interface PageServerSocketPair {
  /** The agent's end, reading through the `onread` it was made with. */
  agent: net.Socket;
  /** CRIU's end, paused (this process must not read what is meant for CRIU): pass it in the child's stdio, then destroy it here. */
  criu: net.Socket;
}

/** A private directory for the socket: under `dir` when the path fits, else under the system's temporary directory. */
async function privateDir(dir: string): Promise<string> {
  const under = Buffer.byteLength(path.join(dir, '.page-server-XXXXXX', 's')) <= MAX_SOCKET_PATH_BYTES ? dir : os.tmpdir();
  return mkdtemp(path.join(under, '.page-server-'));
}

/**
 * Connects a socket pair through a UNIX socket in a private directory under `dir`. `onread` is the agent end's
 * reader (see net.Socket's `onread` option).
 */
export async function pageServerSocketPair(dir: string, onread: net.OnReadOpts): Promise<PageServerSocketPair> {
  const socketDir = await privateDir(dir);
  const socketPath = path.join(socketDir, 's');
  const server = net.createServer({ pauseOnConnect: true });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const agent = net.connect({ path: socketPath, onread });
    await new Promise<void>((resolve, reject) => {
      agent.once('connect', resolve);
      agent.once('error', reject);
    });
    // Only one connection is ever made: a second would have to come from this user's own processes.
    const criu = await accepted;
    return { agent, criu };
  } finally {
    server.close();
    await rm(socketDir, { recursive: true, force: true });
  }
}
