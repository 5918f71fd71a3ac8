// The AWS Signature V4 headers of a plain S3 request with an unsigned payload, from node:crypto alone (no SDK on the hot path).
import { createHash, createHmac } from 'node:crypto';

export interface PlainCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface PlainRequest {
  method: string;
  /** `host[:port]`, as the Host header says. */
  host: string;
  /** The path as sent, already URI-encoded (S3 signs it as it is). */
  path: string;
  /** Further headers to sign (e.g. range), lower-case names. */
  headers?: Record<string, string>;
  /** The canonical query string (names sorted, values encoded), if the request has one. */
  query?: string;
}

const hmac = (key: Buffer | string, text: string) => createHmac('sha256', key).update(text).digest();

/** Signing keys by `date/region/secret`: one a day, not five HMACs per request. */
const signingKeys = new Map<string, Buffer>();

function signingKey(secret: string, date: string, region: string): Buffer {
  const id = `${date}/${region}/${secret}`;
  let key = signingKeys.get(id);
  if (!key) {
    key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), 's3'), 'aws4_request');
    signingKeys.set(id, key);
  }
  return key;
}

/**
 * The headers that make `request` a signed S3 request with `x-amz-content-sha256: UNSIGNED-PAYLOAD` (or the
 * given payload hash): host, x-amz-date, x-amz-content-sha256, the session token if any, and authorization.
 */
export function signedHeaders(
  request: PlainRequest,
  credentials: PlainCredentials,
  region: string,
  now: Date = new Date(),
  payloadHash = 'UNSIGNED-PAYLOAD',
): Record<string, string> {
  const amzDate = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    ...request.headers,
    host: request.host,
    'x-amz-content-sha256': payloadHash,
    'x-amz-date': amzDate,
    ...(credentials.sessionToken ? { 'x-amz-security-token': credentials.sessionToken } : {}),
  };
  const names = Object.keys(headers).sort();
  const canonical = [
    request.method,
    request.path,
    request.query ?? '',
    ...names.map((name) => `${name}:${headers[name]!.trim().replace(/\s+/g, ' ')}`),
    '',
    names.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const signature = createHmac('sha256', signingKey(credentials.secretAccessKey, date, region))
    .update(toSign)
    .digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return headers;
}
