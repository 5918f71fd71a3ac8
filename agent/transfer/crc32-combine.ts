// The CRC-32 of two byte strings put together, from the CRC-32 of each and the second's length (zlib's crc32_combine, in GF(2)).
//
// The workers compute each chunk's CRC-32 where they hash it; a pack's CRC-32, which S3 checks, is then combined
// from its chunks' on the main thread in microseconds, instead of being computed there over every byte.

/** The reflected CRC-32 polynomial (zlib's, IEEE 802.3). */
const POLYNOMIAL = 0xedb88320;

function matrixTimes(matrix: Uint32Array, vector: number): number {
  let sum = 0;
  let v = vector >>> 0;
  for (let i = 0; v !== 0; i++, v >>>= 1) if (v & 1) sum ^= matrix[i]!;
  return sum >>> 0;
}

function matrixSquare(square: Uint32Array, matrix: Uint32Array): void {
  for (let n = 0; n < 32; n++) square[n] = matrixTimes(matrix, matrix[n]!);
}

/** crc32(A + B) from crc32(A), crc32(B) and B's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB <= 0) return crcA >>> 0;
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  // The operator for one zero bit, then two, then four: squaring doubles the bits each step.
  odd[0] = POLYNOMIAL;
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row;
  matrixSquare(even, odd);
  matrixSquare(odd, even);
  let crc = crcA >>> 0;
  let length = lengthB;
  // Apply the operator for each set bit of the length in bytes (eight zero bits per byte to start with).
  for (;;) {
    matrixSquare(even, odd);
    if (length % 2 === 1) crc = matrixTimes(even, crc);
    length = Math.floor(length / 2);
    if (length === 0) break;
    matrixSquare(odd, even);
    if (length % 2 === 1) crc = matrixTimes(odd, crc);
    length = Math.floor(length / 2);
    if (length === 0) break;
  }
  return (crc ^ crcB) >>> 0;
}
