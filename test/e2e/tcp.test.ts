// End to end: a task holding a TCP connection and an HTTPS connection survives checkpoints, and a restore hands it cleanly closed connections.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogEvent, type LogEventName } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import {
  agentEvents,
  agentLog,
  CHECKPOINTED_FOR_NEXT_ATTEMPT,
  collect,
  eventLine,
  runToCompletion,
  runUntilCheckpoint,
  startAttempt,
  waitForExit,
  waitForLog,
} from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { s3Endpoint, bucket, imds } = useStandIns({ bucket: 'e2e-tcp' });
const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');
const CA = readFileSync(path.join(fixtures, 'loopback-tls.crt'), 'utf8');

/**
 * The task: one TCP connection to the echo server and one kept-alive HTTPS connection to the TLS server, used in
 * turn for each step. A connection that fails is reported on stderr with what the task saw, and opened again.
 */
const TASK = `
import os, socket, ssl, sys, time
tcp_port, https_port, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tls = ssl.create_default_context(cadata=os.environ['TCP_TEST_CA'])
def tcp_connect():
    s = socket.create_connection(('127.0.0.1', tcp_port), timeout=60)
    return s, s.makefile('rb')
def https_connect():
    s = tls.wrap_socket(socket.create_connection(('127.0.0.1', https_port), timeout=60), server_hostname='127.0.0.1')
    return s, s.makefile('rb')
def line(reader):
    data = reader.readline()
    if not data:
        raise EOFError('end of stream')
    return data
def https_get(web, path):
    s, reader = web
    s.sendall(('GET %s HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' % path).encode())
    status, length = line(reader), 0
    if status.split()[1] != b'200':
        sys.exit('unexpected HTTPS answer %r' % status)
    while True:
        header = line(reader).strip()
        if not header:
            break
        name, _, value = header.decode().partition(':')
        if name.strip().lower() == 'content-length':
            length = int(value)
    body = reader.read(length)
    if len(body) < length:
        raise EOFError('end of stream')
    return body
tcp = tcp_connect()
web = https_connect()
print('task started', flush=True)
i = 0
while i < steps:
    try:
        tcp[0].sendall(b'ping %d\\n' % i)
        echo = line(tcp[1])
    except (OSError, EOFError) as e:
        print('reconnected tcp after', type(e).__name__, file=sys.stderr, flush=True)
        tcp[0].close()
        tcp = tcp_connect()
        continue
    try:
        body = https_get(web, '/step/%d' % i)
    except (OSError, EOFError) as e:
        print('reconnected https after', type(e).__name__, file=sys.stderr, flush=True)
        web[0].close()
        web = https_connect()
        continue
    print('step', i, echo.decode().strip(), body.decode(), flush=True)
    i += 1
    time.sleep(0.05)
print('done after', steps, 'steps', flush=True)
`;

/** What a task may see on a connection that a restore closed: an end of stream or a refusal, never a wait. */
const CLEAN_CLOSE = /^(EOFError|BrokenPipeError|ConnectionResetError|ConnectionAbortedError|SSLEOFError|SSLZeroReturnError|SSLError)$/;

/** Echoes `ping N` lines as `echo N`; holds the answers from step `holdFrom` on until `release()`. */
class EchoServer {
  private readonly server = net.createServer((socket) => this.serve(socket));
  private readonly held: Array<{ socket: net.Socket; line: string }> = [];
  private readonly waiters: Array<{ step: number; resolve: () => void }> = [];
  holdFrom = Infinity;
  connections = 0;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Resolves once a `ping STEP` has arrived. */
  reached(step: number): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ step, resolve }));
  }

  release(): void {
    this.holdFrom = Infinity;
    for (const { socket, line } of this.held.splice(0)) if (!socket.destroyed) socket.write(line);
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server.close(resolve));
  }

  private serve(socket: net.Socket): void {
    this.connections++;
    socket.on('error', () => undefined);
    readline.createInterface({ input: socket }).on('line', (line) => {
      const step = Number(/^ping (\d+)$/.exec(line)?.[1] ?? Number.NaN);
      if (!Number.isInteger(step)) return void socket.end(`error: expected "ping N", got ${JSON.stringify(line)}\n`);
      const answer = `echo ${step}\n`;
      if (step >= this.holdFrom) this.held.push({ socket, line: answer });
      else socket.write(answer);
      for (const w of this.waiters.filter((x) => x.step === step)) w.resolve();
    });
  }
}

/** An HTTPS server with the test identity for 127.0.0.1 that answers `/step/N` with `ok N` and keeps connections open. */
function tlsServer(): { server: https.Server; connections: () => number } {
  let connections = 0;
  const server = https.createServer({ cert: CA, key: readFileSync(path.join(fixtures, 'loopback-tls.key')) }, (req, res) => {
    res.end(`ok ${/^\/step\/(\d+)$/.exec(req.url ?? '')?.[1] ?? '?'}`);
  });
  server.keepAliveTimeout = 0;
  server.on('secureConnection', () => connections++);
  return { server, connections: () => connections };
}

const echo = new EchoServer();
const web = tlsServer();
beforeAll(async () => {
  await echo.start();
  await new Promise<void>((resolve) => web.server.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  web.server.closeAllConnections();
  await new Promise((resolve) => web.server.close(resolve));
  await echo.stop();
});

/** How a background checkpoint ends: committed, or failed with the task running on. */
const BACKGROUND_OUTCOMES: readonly LogEventName[] = [LogEvent.checkpointCommitted, LogEvent.checkpointBackgroundFailed];
/** How a background checkpoint ends, and how the attempt with a final one ends: either way the test goes on at once. */
const BACKGROUND_OUTCOME = new RegExp(BACKGROUND_OUTCOMES.map((e) => eventLine(e).source).join('|'));
const FINAL_OUTCOME = new RegExp(`${CHECKPOINTED_FOR_NEXT_ATTEMPT.source}|${eventLine(LogEvent.taskContinued).source}`);

/** How each background checkpoint ended: its event, and the event with the error it logged (what CRIU said). */
const backgroundOutcomes = (stderr: string) =>
  agentLog(stderr)
    .filter((l) => l.event !== undefined && BACKGROUND_OUTCOMES.includes(l.event))
    .map((l) => ({ event: l.event, said: l.err ? `${l.event}: ${String(l.err)}` : String(l.event) }));

const STEPS = 30;
const HOLD_AT = 10;
const command = () => ['python3', '-c', TASK, String(echo.port), String((web.server.address() as net.AddressInfo).port), String(STEPS)];
const reconnects = (stderr: string) => [...stderr.matchAll(/^reconnected (tcp|https) after (\w+)$/gm)].map((m) => ({ connection: m[1]!, saw: m[2]! }));

/** Runs the task without spotsnap and without held answers; returns what it printed. */
async function uninterruptedRun(): Promise<string> {
  echo.release();
  const run = await runToCompletion(command(), { TCP_TEST_CA: CA });
  expect(run.exitCode).toBe(0);
  expect(run.stdout).toMatch(new RegExp(`^done after ${STEPS} steps$`, 'm'));
  expect(reconnects(run.stderr)).toEqual([]);
  return run.stdout;
}

describe('a task holding TCP and HTTPS connections', () => {
  it.each([
    { mode: 'close', outcome: LogEvent.checkpointCommitted },
    // 'established' cannot dump a live connection of a tree that runs on: the checkpoint is refused and the task goes on.
    { mode: 'established', outcome: LogEvent.checkpointBackgroundFailed },
  ])(
    'keeps both connections working through background checkpoints ($mode mode)',
    async ({ mode, outcome }) => {
      const uninterrupted = await uninterruptedRun();
      const [tcpBefore, tlsBefore] = [echo.connections, web.connections()];
      echo.holdFrom = HOLD_AT;
      const env = {
        ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId: `tcp-bg-${mode}-${randomUUID()}`, attempt: 1 }),
        SPOTSNAP_CHECKPOINT_INTERVAL: '5s',
        SPOTSNAP_TCP_MODE: mode,
        TCP_TEST_CA: CA,
      };
      const container = await startAttempt(command(), env);
      try {
        // The task waits for the echo of step HOLD_AT on its connection while the checkpoint freezes and continues it.
        await waitForLog(container, BACKGROUND_OUTCOME, 90_000);
        echo.release();
        await waitForExit(container, 90_000);
        const run = await collect(container);

        // Every background checkpoint went the way the mode says (an assertion that fails shows what CRIU said).
        const outcomes = backgroundOutcomes(run.stderr);
        expect(outcomes.length).toBeGreaterThan(0);
        for (const o of outcomes) expect(o.event, o.said).toBe(outcome);
        expect(run.exitCode).toBe(0);
        expect(run.stdout).toBe(uninterrupted);
        // Every step after the checkpoint went over the connections opened before it: none failed, none was opened again.
        expect(reconnects(run.stderr)).toEqual([]);
        expect([echo.connections - tcpBefore, web.connections() - tlsBefore]).toEqual([1, 1]);
        if (mode === 'established') expect(outcomes[0]?.said).toContain('Connected TCP socket, consider using --tcp-established');
      } finally {
        await container.stop({ remove: true, timeout: 0 });
      }
    },
    240_000,
  );

  it('resumes in a fresh container after a notice, finds both connections closed and finishes on new ones (close mode)', async () => {
    const uninterrupted = await uninterruptedRun();
    const jobId = `tcp-resume-${randomUUID()}`;
    const env = (attempt: number) => ({
      ...jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt }),
      SPOTSNAP_CHECKPOINT_INTERVAL: 'off',
      SPOTSNAP_TCP_MODE: 'close',
      TCP_TEST_CA: CA,
    });
    // The notice comes while the task waits on its connection for the echo of step HOLD_AT, so that it cannot finish first.
    echo.holdFrom = HOLD_AT;
    void echo.reached(HOLD_AT).then(() => imds.scheduleNotice(0));
    const first = await runUntilCheckpoint(command(), env(1), FINAL_OUTCOME);
    imds.clearNotice();
    echo.release();
    // The final checkpoint was committed and reported, and none failed (a failure shows what CRIU said).
    const ends = agentLog(first.stderr).filter((l) => l.event === LogEvent.attemptReported || l.event === LogEvent.checkpointFailed);
    expect(ends.map((l) => [l.event, (l.report as { outcome?: string } | undefined)?.outcome ?? String(l.err)])).toEqual([
      [LogEvent.attemptReported, 'checkpointed'],
    ]);
    expect(first.stdout).not.toMatch(/^done after/m);
    expect(reconnects(first.stderr)).toEqual([]);

    const [tcpBefore, tlsBefore] = [echo.connections, web.connections()];
    const second = await runToCompletion(command(), env(2));
    expect(agentEvents(second.stderr)).toContain(LogEvent.restoreDone);
    expect(second.exitCode).toBe(0);
    expect(first.stdout + second.stdout).toBe(uninterrupted);
    // Each restored connection failed at once and cleanly (not a wait for a peer that is gone), and was opened again.
    const seen = reconnects(second.stderr);
    expect(seen.map((r) => r.connection)).toEqual(['tcp', 'https']);
    for (const r of seen) expect(r.saw).toMatch(CLEAN_CLOSE);
    expect([echo.connections - tcpBefore, web.connections() - tlsBefore]).toEqual([1, 1]);
  }, 240_000);
});
