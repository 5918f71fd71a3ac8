// The agent's large transfer buffers, one size, reused by every checkpoint and restore of the process.
//
// Packs go up and come down in buffers of PACK_BYTES. Allocating them per checkpoint made the agent's peak
// memory the sum of its busiest phases (a restore, then a checkpoint in the same process); taking them from
// here makes it the largest one, and buffers that are already resident cost no page faults when reused.

/** The size of every transfer buffer: a pack's largest size. */
export const PACK_BYTES = 8 << 20;

/** Spare buffers kept for reuse; beyond these, returned buffers are left to the garbage collector. */
const KEEP = 4;

const spare: Buffer[] = [];

/** A buffer of PACK_BYTES, reused when one is spare. Give it back with `releaseTransferBuffer` when done. */
export function takeTransferBuffer(): Buffer {
  return spare.pop() ?? Buffer.allocUnsafeSlow(PACK_BYTES);
}

/** Returns a buffer from `takeTransferBuffer`; nothing may use it afterwards. */
export function releaseTransferBuffer(buffer: Buffer): void {
  if (buffer.length === PACK_BYTES && spare.length < KEEP && !spare.includes(buffer)) spare.push(buffer);
}
