// A supervision wired to fakes, for the supervisor's tests: a manual clock, a fake tree, notices, checkpoints and signals.
import pino from 'pino';
import type { NoticeSource } from '../notice/notice-watcher.ts';
import type { SpotNotice } from '../notice/spot-notice.ts';
import type { Clock } from '../shared/clock.ts';
import type { SupervisedTask, TaskExit } from '../task/task-tree.ts';
import type { SupervisionResult } from './supervision-types.ts';
import { supervise, type SignalSource } from './supervisor.ts';

export const POLL_MS = 1000;
export const INTERVAL_MS = 60_000;

/** Lets every promise chain the fakes started run to its end (no timers: time only moves in advance()). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A clock whose sleeps end only when the test moves time past them. */
export class ManualClock implements Clock {
  private time = Date.parse('2026-11-21T09:00:00Z');
  private timers: Array<{ at: number; resolve: () => void }> = [];

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = { at: this.time + ms, resolve: () => resolve() };
      this.timers.push(timer);
      signal?.addEventListener(
        'abort',
        () => {
          this.timers = this.timers.filter((t) => t !== timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Moves time on, ending each sleep that falls due in order and letting what it started run. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await settle();
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.time = due.at;
      due.resolve();
      await settle();
    }
    this.time = end;
  }

  get pending(): number {
    return this.timers.length;
  }
}

/** A promise the test settles. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function fakeTask() {
  const exit = deferred<TaskExit>();
  const calls: string[] = [];
  const task: SupervisedTask = {
    exited: exit.promise,
    forwardSignal: (signal) => void calls.push(`signal ${signal}`),
    continueTree: () => void calls.push('continue'),
    resumeOutput: () => void calls.push('resume output'),
    kill: () => void calls.push('kill'),
    residentBytes: () => 1024 ** 3,
  };
  return { task, calls, exit };
}

/** Everything a supervision under test is wired to, and what it did. */
export function harness(options: { afterCheckpoint?: 'wait' | 'exit'; background?: boolean } = {}) {
  const clock = new ManualClock();
  const tree = fakeTask();
  const posted: { notice: SpotNotice | null } = { notice: null };
  const notices: NoticeSource = { spotNotice: async () => posted.notice };
  const checkpoints: Array<{ kind: string; done: ReturnType<typeof deferred<void>> }> = [];
  let inFlight = 0;
  let mostInFlight = 0;
  const checkpoint = (kind: 'final' | 'background'): Promise<void> => {
    const done = deferred<void>();
    checkpoints.push({ kind, done });
    mostInFlight = Math.max(mostInFlight, ++inFlight);
    return done.promise.finally(() => inFlight--);
  };
  let sendSignal: ((signal: NodeJS.Signals) => void) | undefined;
  let handlersRemoved = false;
  const signals: SignalSource = (handler) => {
    sendSignal = handler;
    return () => {
      handlersRemoved = true;
    };
  };
  const reports: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  let result: SupervisionResult | undefined;
  const start = (pendingSignals: NodeJS.Signals[] = []): Promise<SupervisionResult> => {
    const supervising = supervise(
      {
        config: {
          checkpointInterval: options.background ? { mode: 'every', ms: INTERVAL_MS } : { mode: 'off' },
          afterCheckpoint: options.afterCheckpoint ?? 'wait',
          pollIntervalMs: POLL_MS,
        },
        task: tree.task,
        notices,
        checkpoint,
        dirtyTracking: async () => false,
        onFinalCheckpoint: async () => void reports.push('checkpointed'),
        signals,
        clock,
        log,
      },
      pendingSignals,
    );
    void supervising.then((r) => (result = r));
    return supervising;
  };
  const notice = (time = '2026-11-21T09:02:00Z'): SpotNotice => ({ action: 'terminate', time, deadline: Date.parse(time), id: `terminate@${time}` });
  return {
    clock,
    tree,
    posted,
    checkpoints,
    reports,
    notice,
    start,
    msgs: () => lines.map((l) => l.msg),
    signal: (s: NodeJS.Signals) => sendSignal!(s),
    result: () => result,
    mostInFlight: () => mostInFlight,
    handlersRemoved: () => handlersRemoved,
  };
}
