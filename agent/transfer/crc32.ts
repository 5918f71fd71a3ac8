// The CRC-32 that S3 checks a pack by: the native binding's (carry-less multiply folding), else zlib's, which is the same value at half the speed.
import { crc32 as zlibCrc32 } from 'node:zlib';
import { lazyNativeBinding } from '../shared/native-binding.ts';

export interface Crc32Binding {
  crc32(input: Uint8Array, initialState?: number): number;
}

/** Throws unless `binding` computes CRC-32/ISO-HDLC: its check value, of "123456789", is 0xcbf43926. */
export function checkCrc32(binding: Crc32Binding): void {
  const got = binding.crc32(Buffer.from('123456789')) >>> 0;
  if (got !== 0xcbf43926) throw new Error(`it gives 0x${got.toString(16)} for CRC-32("123456789"), not 0xcbf43926`);
}

const native = lazyNativeBinding<Crc32Binding>('crc32', checkCrc32);

/** CRC-32 (ISO-HDLC, zlib's and S3's `x-amz-checksum-crc32`) of `data`, unsigned. */
export function crc32(data: Uint8Array): number {
  const binding = native().binding;
  return (binding ? binding.crc32(data) : zlibCrc32(data)) >>> 0;
}

/** Which implementation this process uses, for `spotsnap doctor`. */
export function crc32Implementation(): string {
  const loaded = native();
  return loaded.binding ? `native (${loaded.from})` : `zlib (native binding unavailable: ${loaded.error})`;
}
