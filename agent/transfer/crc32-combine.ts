// The CRC-32 of two byte strings put together, from the CRC-32 of each and the second's length (polynomial arithmetic modulo zlib's CRC-32 polynomial).
//
// The workers compute each chunk's CRC-32 where they hash it; a pack's CRC-32, which S3 checks, is then combined
// from its chunks' on the main thread instead of being computed there over every byte. Appending n zero bytes
// to a message multiplies its CRC by x^(8n) modulo the polynomial, so crc(A + B) = crc(A) * x^(8|B|) ^ crc(B).
// x^(8n) is the product of the powers x^(2^k) for the set bits of 8n, taken from a table of 32 made once: a
// combine is at most some 30 products of 32-bit polynomials (the matrix method this replaced squared 32 x 32
// matrices some 40 times per call, about 0.08 CPU-seconds per GiB packed in 1 MiB chunks).

/** The reflected CRC-32 polynomial (zlib's, IEEE 802.3): bit 31 is x^0, bit 0 is x^31. */
const POLYNOMIAL = 0xedb88320;
/** x^0, the polynomial 1, in the reflected form. */
const ONE = 0x80000000;

/** a * b modulo the polynomial, both in the reflected form. */
function multiplyModP(a: number, b: number): number {
  let product = 0;
  let factor = b >>> 0;
  for (let bit = ONE; bit !== 0 && (a & (bit | (bit - 1))) !== 0; bit >>>= 1) {
    if (a & bit) product ^= factor;
    // factor *= x: a shift towards the high powers, reduced by the polynomial when x^31 falls off.
    factor = factor & 1 ? (factor >>> 1) ^ POLYNOMIAL : factor >>> 1;
  }
  return product >>> 0;
}

/** X_POWERS[k] = x^(2^k) modulo the polynomial, k = 0..31; x^(2^(k + 32)) is x^(2^k) again (x's order modulo it divides 2^32 - 1). */
const X_POWERS = (() => {
  const powers = new Uint32Array(32);
  powers[0] = ONE >>> 1; // x^1
  for (let k = 1; k < 32; k++) powers[k] = multiplyModP(powers[k - 1]!, powers[k - 1]!);
  return powers;
})();

/** x^(8 * bytes) modulo the polynomial: the operator that appends `bytes` zero bytes to a CRC. */
function zeroBytesOperator(bytes: number): number {
  let operator = ONE;
  // 8 * bytes has the bits of `bytes` shifted up by three: start at x^(2^3).
  for (let k = 3, rest = bytes; rest > 0; k++, rest = Math.floor(rest / 2)) {
    if (rest % 2 === 1) operator = multiplyModP(X_POWERS[k % 32]!, operator);
  }
  return operator;
}

/** crc32(A + B) from crc32(A), crc32(B) and B's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  if (lengthB <= 0) return crcA >>> 0;
  return (multiplyModP(zeroBytesOperator(lengthB), crcA) ^ crcB) >>> 0;
}
