// The fast S3 stand-in's requests: path-style S3 calls spotsnap makes, over a directory of buckets shared by its processes.
//
// Served: CreateBucket, HeadBucket, DeleteBucket, ListBuckets, GetBucketLocation, PutObject (checksums,
// Content-MD5 and a signed payload's SHA-256 checked, aws-chunked bodies, If-None-Match: *), GetObject and
// HeadObject (one Range each), DeleteObject, DeleteObjects and ListObjectsV2. Anything else answers 501
// NotImplemented naming the request. Every request must be signed, as the agent's always are; the signature
// itself is not checked. Not kept: Content-Type (reads say binary/octet-stream), user metadata, and the
// checksums a PUT brought (checked on the way in, not given back on reads).
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { BodyDigests } from './fast-s3-digests.ts';
import { sendObject } from './fast-s3-get.ts';
import { checkBucketName, fileNameOfKey, keyOfFileName, parsePathStyle } from './fast-s3-keys.ts';
import { etagOf, receiveObject } from './fast-s3-put.ts';
import { parseListObjectsV2Query, unservedQueryParameter } from './s3-request-query.ts';
import { listPage, utf8Compare } from './s3-stand-in-listing.ts';
import { deleteResultDocument, errorDocument, listBucketsDocument, listObjectsV2Document, parseDeleteRequest, S3StandInError } from './s3-stand-in-xml.ts';

/** A DeleteObjects body of 1,000 keys of 1,024 bytes each, with its XML, fits. */
const MAX_DELETE_BODY_BYTES = 2 << 20;

const noSuchBucket = (bucket: string) => new S3StandInError(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });

/**
 * Returns the request handler of one stand-in process serving the buckets under `dir` (a directory each); a
 * PUT of more than `discardOver` bytes is checked and dropped (fast-s3-put.ts).
 */
export function createFastS3Handler(dir: string, discardOver = Number.POSITIVE_INFINITY): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    const requestId = randomUUID();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('x-amz-id-2', requestId);
    route(dir, discardOver, req, res).catch((error: unknown) => {
      const s3Error =
        error instanceof S3StandInError ? error : new S3StandInError(500, 'InternalError', `the fast S3 stand-in failed: ${(error as Error).message}`);
      if (res.headersSent) return void res.destroy();
      // A body not read to its end is not read at all: the connection closes after the answer.
      if (!req.complete) res.setHeader('connection', 'close');
      res.statusCode = s3Error.status;
      if (req.method === 'HEAD') return void res.end();
      res.setHeader('content-type', 'application/xml');
      res.end(errorDocument(s3Error, requestId));
    });
  };
}

function isSigned(req: http.IncomingMessage, query: URLSearchParams): boolean {
  return typeof req.headers.authorization === 'string' || query.has('X-Amz-Signature');
}

async function route(dir: string, discardOver: number, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const raw = req.url ?? '/';
  const queryAt = raw.indexOf('?');
  const rawPath = queryAt < 0 ? raw : raw.slice(0, queryAt);
  const query = new URLSearchParams(queryAt < 0 ? '' : raw.slice(queryAt + 1));
  const method = req.method ?? 'GET';
  const name = `${method} ${raw.slice(0, 200)}`;
  if (!isSigned(req, query)) {
    throw new S3StandInError(
      403,
      'AccessDenied',
      `the fast S3 stand-in takes signed requests only (any signature), as S3 does; ${name} has no Authorization header`,
    );
  }
  const unserved = unservedQueryParameter(query);
  if (unserved || req.headers['x-amz-copy-source']) {
    throw new S3StandInError(501, 'NotImplemented', `the fast S3 stand-in does not serve ${name} (${unserved ?? 'x-amz-copy-source'})`);
  }
  const { bucket, key } = parsePathStyle(rawPath);
  if (bucket === '') {
    if (method !== 'GET') throw new S3StandInError(501, 'NotImplemented', `the fast S3 stand-in does not serve ${name}`);
    return xml(res, 200, listBucketsDocument(listBuckets(dir)));
  }
  checkBucketName(bucket);
  const bucketDir = path.join(dir, bucket);
  if (key === '') return bucketRequest(method, name, bucket, bucketDir, query, req, res);
  const fileName = fileNameOfKey(key);
  if (method === 'PUT') {
    const put = await receiveObject(req, bucketDir, fileName, req.headers['if-none-match'] === '*', discardOver);
    res.setHeader('etag', `"${put.etag}"`);
    for (const [header, value] of Object.entries(put.checksums)) res.setHeader(header, value);
    for (const header of ['x-amz-server-side-encryption', 'x-amz-server-side-encryption-aws-kms-key-id']) {
      const value = req.headers[header];
      if (typeof value === 'string') res.setHeader(header, value);
    }
    return void res.end();
  }
  if (method === 'GET' || method === 'HEAD') {
    return sendObject(req, res, path.join(bucketDir, fileName), () =>
      bucketExists(bucketDir)
        ? new S3StandInError(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key, BucketName: bucket })
        : noSuchBucket(bucket),
    );
  }
  if (method === 'DELETE') {
    if (!bucketExists(bucketDir)) throw noSuchBucket(bucket);
    unlinkIfThere(path.join(bucketDir, fileName));
    res.statusCode = 204;
    return void res.end();
  }
  throw new S3StandInError(501, 'NotImplemented', `the fast S3 stand-in does not serve ${name}`);
}

function bucketExists(bucketDir: string): boolean {
  try {
    return statSync(bucketDir).isDirectory();
  } catch {
    return false;
  }
}

function unlinkIfThere(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

function listBuckets(dir: string): Array<{ name: string; created: Date }> {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => ({ name: d.name, created: statSync(path.join(dir, d.name)).birthtime }))
    .sort((a, b) => utf8Compare(a.name, b.name));
}

/** Reads a small body whole (a DeleteObjects request, a CreateBucket configuration), checked as a PUT's is. */
function readSmallBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const digests = new BodyDigests(req.headers);
    const pieces: Buffer[] = [];
    let bytes = 0;
    req.on('data', (piece: Buffer) => {
      bytes += piece.length;
      if (bytes > MAX_DELETE_BODY_BYTES) {
        reject(new S3StandInError(400, 'MaxMessageLengthExceeded', `the request body is over ${MAX_DELETE_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      digests.update(piece);
      pieces.push(piece);
    });
    req.on('error', reject);
    req.on('end', () => {
      try {
        digests.verify({});
        resolve(Buffer.concat(pieces));
      } catch (error) {
        reject(error);
      }
    });
  });
}

async function bucketRequest(
  method: string,
  name: string,
  bucket: string,
  bucketDir: string,
  query: URLSearchParams,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  if (method === 'PUT') {
    await readSmallBody(req);
    try {
      mkdirSync(bucketDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      throw new S3StandInError(409, 'BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', {
        BucketName: bucket,
      });
    }
    res.setHeader('location', `/${bucket}`);
    return void res.end();
  }
  if (!bucketExists(bucketDir)) throw noSuchBucket(bucket);
  if (method === 'HEAD') return void res.end();
  if (method === 'DELETE') {
    try {
      rmdirSync(bucketDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw error;
      throw new S3StandInError(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', { BucketName: bucket });
    }
    res.statusCode = 204;
    return void res.end();
  }
  if (method === 'POST' && query.has('delete')) {
    const body = await readSmallBody(req);
    if (!req.headers['content-md5'] && !Object.keys(req.headers).some((h) => h.startsWith('x-amz-checksum-') && h !== 'x-amz-checksum-mode')) {
      throw new S3StandInError(400, 'InvalidRequest', 'Missing required header for this request: Content-MD5 (or an x-amz-checksum-* header)');
    }
    const { keys, quiet } = parseDeleteRequest(body.toString('utf8'));
    for (const key of keys) unlinkIfThere(path.join(bucketDir, fileNameOfKey(key)));
    return xml(res, 200, deleteResultDocument(quiet ? [] : keys));
  }
  if (method === 'GET' && query.get('list-type') === '2') return listObjectsV2(bucket, bucketDir, query, res);
  if (method === 'GET' && query.has('location'))
    return xml(res, 200, '<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>');
  throw new S3StandInError(501, 'NotImplemented', `the fast S3 stand-in does not serve ${name} (of listings it serves ListObjectsV2, list-type=2)`);
}

function listObjectsV2(bucket: string, bucketDir: string, query: URLSearchParams, res: http.ServerResponse): void {
  const { request, urlEncoded } = parseListObjectsV2Query(query);
  const sorted = readdirSync(bucketDir)
    .map(keyOfFileName)
    .filter((key): key is string => key?.startsWith(request.prefix) === true)
    .sort(utf8Compare);
  const page = listPage(sorted, request);
  const objects = [];
  for (const key of page.keys) {
    try {
      const stats = statSync(path.join(bucketDir, fileNameOfKey(key)));
      objects.push({ key, bytes: stats.size, etag: etagOf(stats), lastModified: stats.mtime });
    } catch (error) {
      // Deleted since the directory was read: listed as S3 would a moment later.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  xml(res, 200, listObjectsV2Document({ bucket, ...request, ...page, objects, urlEncoded }));
}

function xml(res: http.ServerResponse, status: number, document: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/xml');
  res.end(document);
}
