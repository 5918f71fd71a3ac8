// Compressible test data from a seed: the same text on every run, about 2 bits of entropy a byte, which zstd squeezes.
import { seededBytes } from './seeded-bytes.ts';

const ACGT = Buffer.from('ACGT');

/** `length` bytes of 60-letter lines of A, C, G and T picked by seededBytes(seed): different seeds give unrelated text. */
export function seededAcgtLines(seed: string, length: number): Buffer {
  const picks = seededBytes(seed, length);
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = i % 61 === 60 ? 0x0a : ACGT[picks[i]! & 3]!;
  return out;
}
