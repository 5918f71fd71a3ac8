// The CRC-32 that S3 checks a pack by: the native binding's (carry-less multiply folding), else zlib's, which is the same value at half the speed.
import { crc32 as zlibCrc32 } from 'node:zlib';
import { loadNativeBinding } from '../shared/native-binding.ts';

interface Crc32Binding {
  crc32(input: Uint8Array, initialState?: number): number;
}

const native = loadNativeBinding<Crc32Binding>('crc32');

/** CRC-32 (ISO-HDLC, zlib's and S3's `x-amz-checksum-crc32`) of `data`, unsigned. */
export const crc32: (data: Uint8Array) => number = native.binding ? (data) => native.binding!.crc32(data) >>> 0 : (data) => zlibCrc32(data) >>> 0;

/** Which implementation this process uses, for `spotsnap doctor`. */
export function crc32Implementation(): string {
  return native.binding ? `native (${native.from})` : `zlib (native binding unavailable: ${native.error})`;
}
