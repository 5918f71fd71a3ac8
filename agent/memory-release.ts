// Gives memory back between large buffers: a garbage collection every so many bytes, when the runtime allows it.

const EVERY_BYTES = 64 * 1024 * 1024;
let sinceLast = 0;

/**
 * Counts bytes that went through short-lived buffers and collects garbage every 64 MiB. V8 alone lets
 * freed chunk buffers pile up for a while; this keeps the agent's peak memory near what it really holds.
 * Works when Node runs with --expose-gc (docker/spotsnap does); otherwise does nothing.
 */
export function releasedBytes(bytes: number): void {
  sinceLast += bytes;
  if (sinceLast < EVERY_BYTES) return;
  sinceLast = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
}
