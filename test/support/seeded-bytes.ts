// Pseudo-random test data from a seed: the same bytes on every run, as random as real data to the chunker.
import { createCipheriv, createHash } from 'node:crypto';

/** `length` bytes of an AES-256-CTR key stream keyed by `seed`: different seeds give unrelated bytes. */
export function seededBytes(seed: string, length: number): Buffer {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(seed).digest(), Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}
