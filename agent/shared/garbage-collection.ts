// Frees garbage at the moments the agent knows it died, where it runs with --expose-gc (docker/spotsnap): a young-generation collection after each zstd call, a full one once its start (or restore) is over.
//
// Every zstd call allocates its output, and the threads that compress and decompress chunks allocate little
// else, so V8 would collect those dead megabytes only once they passed its external-memory limit (some 64 MiB
// a thread). Measured in one process: 200 compressions of a 1 MiB chunk peaked at 141 MiB of RSS without a
// collection after each, at 57 MiB with one, and took a quarter of the time (fresh memory faults in less).
// Without the flag (the tests, a development run) this does nothing.

const collect = (globalThis as { gc?: (options?: { type: 'minor' | 'major' }) => void }).gc;

/** A young-generation collection now, when the runtime exposes one. */
export function collectYoungGarbage(): void {
  collect?.({ type: 'minor' });
}

/**
 * A full collection now, when the runtime exposes one: once the agent's start is over, and with it a restore,
 * whose manifest, plans and connections are dead by then, so that the restored task's next checkpoint does not
 * stack its buffers on them. It took the restored attempt's peak from 139-143 MiB to 133-134 (`npm run bench`,
 * 1 GiB); one before each checkpoint as well changed nothing, so there is none.
 */
export function collectAllGarbage(): void {
  collect?.({ type: 'major' });
}
