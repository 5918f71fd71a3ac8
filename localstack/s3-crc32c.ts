// CRC-32C (Castagnoli), the checksum S3 names crc32c, computed piece by piece as zlib.crc32 computes CRC-32.
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** The CRC-32C of `piece` continued from `crc`, the value of the bytes before it (0 for none), as an unsigned 32-bit number. */
export function crc32c(piece: Buffer, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < piece.length; i++) c = CRC32C_TABLE[(c ^ piece[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
