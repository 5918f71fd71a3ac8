// The agent's large transfer buffers, one size, reused by every checkpoint of the process.
//
// Packs are filled and go up in buffers of PACK_BYTES. Taking them from here rather than allocating them per
// checkpoint keeps a process that checkpoints again (background checkpoints, a restored task interrupted once
// more) at one set, and buffers that are already resident cost no page faults when reused. Restores need
// none: they read straight from the socket into the image files (direct-range-get.ts).

/** The size of every transfer buffer: a pack's largest size (and the largest ranged read of a restore). */
export const PACK_BYTES = 8 << 20;

const spare: Buffer[] = [];
/** Buffers taken and not yet given back, and the most there ever were at once: the set kept for reuse. */
let out = 0;
let mostOut = 0;

/** A buffer of PACK_BYTES, reused when one is spare. Give it back with `releaseTransferBuffer` when done. */
export function takeTransferBuffer(): Buffer {
  out++;
  mostOut = Math.max(mostOut, out);
  return spare.pop() ?? Buffer.allocUnsafeSlow(PACK_BYTES);
}

/**
 * Returns a buffer from `takeTransferBuffer`; nothing may use it afterwards. As many are kept as a checkpoint
 * ever had out at once (SPOTSNAP_PACKS_IN_FLIGHT + 1), so the next checkpoint allocates none.
 */
export function releaseTransferBuffer(buffer: Buffer): void {
  if (buffer.length !== PACK_BYTES || spare.includes(buffer)) return;
  out = Math.max(0, out - 1);
  if (spare.length < mostOut) spare.push(buffer);
}
