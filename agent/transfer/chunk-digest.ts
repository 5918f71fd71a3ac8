// A chunk's identity: the BLAKE3 of its raw bytes (SHA-256 where BLAKE3's native binding cannot load), written `algorithm:hex` as OCI digests are.
import { createHash } from 'node:crypto';
import { lazyNativeBinding } from '../shared/native-binding.ts';

/**
 * BLAKE3 is a cryptographic hash, as collision-resistant for content addressing as SHA-256, and 2.5 times as
 * fast on one core here (0.27 against 0.67 s/GiB, SHA-256 with the CPU's SHA extensions): it was the largest
 * single cost of a checkpoint. SHA-256 stays readable, and is what a process without the binding writes.
 */
export type ChunkDigestAlgorithm = 'blake3' | 'sha256';

/** A chunk digest as manifests write it. */
export const CHUNK_DIGEST_PATTERN = /^(blake3|sha256):[0-9a-f]{64}$/;

export interface Blake3Binding {
  blake3(input: Uint8Array): Buffer;
}

/** BLAKE3 of "abc", as its specification publishes it: a binding that loads but gives another value is not used. */
const BLAKE3_OF_ABC = '6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85';

/** Throws unless `binding` computes BLAKE3. */
export function checkBlake3(binding: Blake3Binding): void {
  const got = binding.blake3(Buffer.from('abc')).toString('hex');
  if (got !== BLAKE3_OF_ABC) throw new Error(`it gives ${got} for BLAKE3("abc"), not ${BLAKE3_OF_ABC}`);
}

const blake3 = lazyNativeBinding<Blake3Binding>('blake3', checkBlake3);

/** Why this process cannot compute BLAKE3, or undefined when it can. */
export function blake3Unavailable(): string | undefined {
  const loaded = blake3();
  return loaded.binding ? undefined : loaded.error;
}

/** The algorithm this process names new chunks by. */
export function preferredChunkDigest(): ChunkDigestAlgorithm {
  return blake3().binding ? 'blake3' : 'sha256';
}

/** `algorithm:hex` of `data`; throws, saying why, for BLAKE3 in a process without its binding. */
export function chunkDigest(data: Uint8Array, algorithm: ChunkDigestAlgorithm = preferredChunkDigest()): string {
  if (algorithm === 'sha256') return `sha256:${createHash('sha256').update(data).digest('hex')}`;
  const loaded = blake3();
  if (!loaded.binding) throw new Error(`this agent cannot compute BLAKE3 chunk digests (${loaded.error})`);
  return `blake3:${loaded.binding.blake3(data).toString('hex')}`;
}

/** The algorithm a digest was made with. */
export function digestAlgorithm(digest: string): ChunkDigestAlgorithm {
  const algorithm = digest.slice(0, digest.indexOf(':'));
  if (algorithm !== 'blake3' && algorithm !== 'sha256') throw new Error(`chunk digest ${JSON.stringify(digest)} names no known algorithm (blake3 or sha256)`);
  return algorithm;
}

/** Why this process cannot compute (and so cannot check) digests by `algorithm`, or undefined when it can. */
export function cannotCompute(algorithm: ChunkDigestAlgorithm): string | undefined {
  return algorithm === 'blake3' ? blake3Unavailable() : undefined;
}
