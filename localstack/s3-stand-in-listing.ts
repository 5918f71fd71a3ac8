// ListObjectsV2 over the S3 stand-in's keys: UTF-8 order, prefix, delimiter, max-keys, start-after, continuation tokens.
import { S3StandInError } from './s3-stand-in-xml.ts';

/** Compares as S3 orders keys, by their UTF-8 bytes (which differs from UTF-16 order above U+D7FF). */
export function utf8Compare(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (code points above U+FFFF) sort after U+E000-U+FFFF in UTF-8.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

export interface ListRequest {
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  startAfter?: string;
  continuationToken?: string;
}

export interface ListResult {
  keys: string[];
  commonPrefixes: string[];
  /** Set when more entries follow: pass it back as `continuationToken`. */
  nextContinuationToken?: string;
}

/** What a continuation token carries: the last entry of the page (a key, or a common prefix to skip whole). */
interface Position {
  after: string;
  prefix: boolean;
}

function encodeToken(position: Position): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

function decodeToken(token: string): Position {
  try {
    const position = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<Position>;
    if (typeof position.after === 'string' && typeof position.prefix === 'boolean') return { after: position.after, prefix: position.prefix };
  } catch {
    // Falls through to the error below.
  }
  throw new S3StandInError(400, 'InvalidArgument', 'The continuation token provided is incorrect', { ArgumentName: 'continuation-token' });
}

/** The first index of `sorted` whose key sorts after `key` (or at it, with `orAt`). */
function firstAfter(sorted: readonly string[], key: string, orAt = false): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const order = utf8Compare(sorted[mid]!, key);
    if (order < 0 || (order === 0 && !orAt)) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** One page of ListObjectsV2 over `sorted` (keys in UTF-8 order); a common prefix counts as one entry. */
export function listPage(sorted: readonly string[], request: ListRequest): ListResult {
  const keys: string[] = [];
  const commonPrefixes: string[] = [];
  const position = request.continuationToken !== undefined ? decodeToken(request.continuationToken) : undefined;
  let from = firstAfter(sorted, request.prefix, true);
  if (request.startAfter !== undefined) from = Math.max(from, firstAfter(sorted, request.startAfter));
  if (position) from = Math.max(from, firstAfter(sorted, position.after));
  let last: Position | undefined;
  for (let i = from; i < sorted.length; i++) {
    const key = sorted[i]!;
    if (position?.prefix && key.startsWith(position.after)) continue;
    if (!key.startsWith(request.prefix)) break;
    const cut = request.delimiter ? key.indexOf(request.delimiter, request.prefix.length) : -1;
    const entry: Position = cut >= 0 ? { after: key.slice(0, cut + request.delimiter!.length), prefix: true } : { after: key, prefix: false };
    if (entry.prefix && last?.prefix && last.after === entry.after) continue;
    if (keys.length + commonPrefixes.length === request.maxKeys) {
      return { keys, commonPrefixes, ...(last ? { nextContinuationToken: encodeToken(last) } : {}) };
    }
    if (entry.prefix) commonPrefixes.push(entry.after);
    else keys.push(key);
    last = entry;
  }
  return { keys, commonPrefixes };
}
