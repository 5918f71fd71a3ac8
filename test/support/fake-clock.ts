// A clock for unit tests: time moves only when the test (or a sleep) moves it, so nothing waits for real.
import type { Clock } from '../../agent/shared/clock.ts';

export class FakeClock implements Clock {
  private time: number;
  readonly sleeps: number[] = [];

  constructor(start = Date.parse('2026-11-21T09:00:00Z')) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  advance(ms: number): void {
    this.time += ms;
  }

  /** Records the sleep, moves time forward at once and yields to other work. */
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.sleeps.push(ms);
    this.time += ms;
    await new Promise((resolve) => setImmediate(resolve));
    signal?.throwIfAborted();
  }
}
