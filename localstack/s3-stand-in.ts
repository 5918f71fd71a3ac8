// An in-memory S3 on 127.0.0.1 (path-style, any credentials) speaking the calls spotsnap makes, for fast tests.
//
// Served: CreateBucket, HeadBucket, DeleteBucket, ListBuckets, PutObject (checksums and Content-MD5 checked,
// aws-chunked bodies, If-None-Match: *), GetObject and HeadObject (one Range each), DeleteObject,
// DeleteObjects and ListObjectsV2. Anything else (multipart uploads, copies, ACLs, ...) answers 501
// NotImplemented naming the request, rather than something S3 would not say. Signatures are not checked.
import { createHash, randomUUID } from 'node:crypto';
import type http from 'node:http';
import { LoopbackServer } from './loopback-server.ts';
import { parseListObjectsV2Query, unservedQueryParameter } from './s3-request-query.ts';
import { CHECKSUM_ALGORITHMS, receiveBody, type ChecksumAlgorithm } from './s3-stand-in-body.ts';
import { listPage, utf8Compare } from './s3-stand-in-listing.ts';
import { deleteResultDocument, errorDocument, listBucketsDocument, listObjectsV2Document, parseDeleteRequest, S3StandInError } from './s3-stand-in-xml.ts';

export interface StoredObject {
  data: Buffer;
  etag: string;
  lastModified: Date;
  contentType: string;
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
  /** `x-amz-meta-*` and `x-amz-server-side-encryption*` headers, given back on reads. */
  headers: Record<string, string>;
}

interface Bucket {
  created: Date;
  objects: Map<string, StoredObject>;
  /** The keys in UTF-8 order, rebuilt on the next listing after a key was added or removed. */
  sorted?: string[];
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

const notFound = (code: 'NoSuchBucket' | 'NoSuchKey', details: Record<string, string>) =>
  new S3StandInError(404, code, code === 'NoSuchBucket' ? 'The specified bucket does not exist' : 'The specified key does not exist.', details);

export class S3StandIn extends LoopbackServer {
  protected readonly serverName = 'S3 stand-in';
  private readonly buckets = new Map<string, Bucket>();

  /** Creates a bucket directly (as CreateBucket would); an existing one is kept as it is. */
  createBucket(name: string): void {
    if (!BUCKET_NAME.test(name))
      throw new S3StandInError(
        400,
        'InvalidBucketName',
        `The specified bucket is not valid: ${JSON.stringify(name)} (S3 names a bucket with 3 to 63 of a-z, 0-9, '.' and '-')`,
        { BucketName: name },
      );
    if (!this.buckets.has(name)) this.buckets.set(name, { created: new Date(), objects: new Map() });
  }

  /** Stores an object directly, as a PUT without checksums would (to seed a test or a benchmark fast). */
  put(bucket: string, key: string, data: Buffer, contentType = 'binary/octet-stream'): void {
    const target = this.buckets.get(bucket);
    if (!target) throw notFound('NoSuchBucket', { BucketName: bucket });
    this.store(target, key, { data, etag: createHash('md5').update(data).digest('hex'), lastModified: new Date(), contentType, checksums: {}, headers: {} });
  }

  /** What is stored under a key, for tests that look behind the API; undefined when nothing is. */
  object(bucket: string, key: string): StoredObject | undefined {
    return this.buckets.get(bucket)?.objects.get(key);
  }

  protected async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = randomUUID();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('x-amz-id-2', requestId);
    try {
      await this.route(req, res);
    } catch (error) {
      req.resume();
      const s3Error = error instanceof S3StandInError ? error : new S3StandInError(500, 'InternalError', `the S3 stand-in failed: ${(error as Error).message}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.statusCode = s3Error.status;
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/xml');
      res.end(errorDocument(s3Error, requestId));
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const method = req.method ?? 'GET';
    const [bucketName = '', ...rest] = url.pathname.slice(1).split('/');
    const key = rest.map((s) => decodeURIComponent(s)).join('/');
    const unserved = unservedQueryParameter(url.searchParams);
    const name = `${method} ${url.pathname}${url.search}`;
    if (unserved || req.headers['x-amz-copy-source']) {
      throw new S3StandInError(501, 'NotImplemented', `the S3 stand-in does not serve ${name} (${unserved ?? 'x-amz-copy-source'})`);
    }
    if (bucketName === '') {
      if (method !== 'GET') throw new S3StandInError(501, 'NotImplemented', `the S3 stand-in does not serve ${name}`);
      const list = [...this.buckets].map(([n, b]) => ({ name: n, created: b.created })).sort((a, b) => utf8Compare(a.name, b.name));
      return xml(res, 200, listBucketsDocument(list));
    }
    if (rest.length === 0 || (rest.length === 1 && key === '')) return this.bucketRequest(method, bucketName, url, req, res);
    const bucket = this.buckets.get(bucketName);
    if (!bucket) throw notFound('NoSuchBucket', { BucketName: bucketName });
    if (method === 'PUT') return this.putObject(bucket, key, req, res);
    if (method === 'GET' || method === 'HEAD') return this.getObject(bucket, bucketName, key, req, res);
    if (method === 'DELETE') {
      if (bucket.objects.delete(key)) bucket.sorted = undefined;
      res.statusCode = 204;
      return void res.end();
    }
    throw new S3StandInError(501, 'NotImplemented', `the S3 stand-in does not serve ${name}`);
  }

  private async bucketRequest(method: string, name: string, url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (method === 'PUT') {
      await receiveBody(req);
      if (this.buckets.has(name))
        throw new S3StandInError(409, 'BucketAlreadyOwnedByYou', 'Your previous request to create the named bucket succeeded and you already own it.', {
          BucketName: name,
        });
      this.createBucket(name);
      res.setHeader('location', `/${name}`);
      return void res.end();
    }
    const bucket = this.buckets.get(name);
    if (!bucket) throw notFound('NoSuchBucket', { BucketName: name });
    if (method === 'HEAD') return void res.end();
    if (method === 'DELETE') {
      if (bucket.objects.size > 0) throw new S3StandInError(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', { BucketName: name });
      this.buckets.delete(name);
      res.statusCode = 204;
      return void res.end();
    }
    if (method === 'POST' && url.searchParams.has('delete')) {
      const body = await receiveBody(req);
      if (!req.headers['content-md5'] && Object.keys(body.checksums).length === 0) {
        throw new S3StandInError(400, 'InvalidRequest', 'Missing required header for this request: Content-MD5 (or an x-amz-checksum-* header)');
      }
      const { keys, quiet } = parseDeleteRequest(body.data.toString('utf8'));
      for (const key of keys) if (bucket.objects.delete(key)) bucket.sorted = undefined;
      return xml(res, 200, deleteResultDocument(quiet ? [] : keys));
    }
    if (method === 'GET' && url.searchParams.get('list-type') === '2') return this.listObjectsV2(bucket, name, url, res);
    if (method === 'GET' && url.searchParams.has('location'))
      return xml(res, 200, '<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>');
    throw new S3StandInError(
      501,
      'NotImplemented',
      `the S3 stand-in does not serve ${method} /${name}${url.search} (of listings it serves ListObjectsV2, list-type=2)`,
    );
  }

  private listObjectsV2(bucket: Bucket, name: string, url: URL, res: http.ServerResponse): void {
    const { request, urlEncoded } = parseListObjectsV2Query(url.searchParams);
    bucket.sorted ??= [...bucket.objects.keys()].sort(utf8Compare);
    const page = listPage(bucket.sorted, request);
    const objects = page.keys.map((key) => {
      const o = bucket.objects.get(key)!;
      return { key, bytes: o.data.length, etag: o.etag, lastModified: o.lastModified };
    });
    xml(res, 200, listObjectsV2Document({ bucket: name, ...request, ...page, objects, urlEncoded }));
  }

  private async putObject(bucket: Bucket, key: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await receiveBody(req);
    if (req.headers['if-none-match'] === '*' && bucket.objects.has(key)) {
      throw new S3StandInError(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', { Condition: 'If-None-Match' });
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string' && (name.startsWith('x-amz-meta-') || name.startsWith('x-amz-server-side-encryption'))) headers[name] = value;
    }
    const stored: StoredObject = {
      data: body.data,
      etag: createHash('md5').update(body.data).digest('hex'),
      lastModified: new Date(),
      contentType: String(req.headers['content-type'] ?? 'binary/octet-stream'),
      checksums: body.checksums,
      headers,
    };
    this.store(bucket, key, stored);
    res.setHeader('etag', `"${stored.etag}"`);
    for (const [name, value] of Object.entries(headers)) if (name.startsWith('x-amz-server-side-encryption')) res.setHeader(name, value);
    for (const [algorithm, value] of Object.entries(body.checksums)) res.setHeader(`x-amz-checksum-${algorithm}`, value);
    res.end();
  }

  private store(bucket: Bucket, key: string, stored: StoredObject): void {
    if (!bucket.objects.has(key)) bucket.sorted = undefined;
    bucket.objects.set(key, stored);
  }

  private getObject(bucket: Bucket, bucketName: string, key: string, req: http.IncomingMessage, res: http.ServerResponse): void {
    const stored = bucket.objects.get(key);
    if (!stored) throw notFound('NoSuchKey', { Key: key, BucketName: bucketName });
    const size = stored.data.length;
    const range = parseRange(req.headers.range, size);
    res.setHeader('accept-ranges', 'bytes');
    res.setHeader('etag', `"${stored.etag}"`);
    res.setHeader('last-modified', stored.lastModified.toUTCString());
    res.setHeader('content-type', stored.contentType);
    for (const [name, value] of Object.entries(stored.headers)) res.setHeader(name, value);
    // As S3 does, whole-object checksums go only with whole-object reads that ask for them.
    if (!range && req.headers['x-amz-checksum-mode'] === 'ENABLED') {
      for (const algorithm of CHECKSUM_ALGORITHMS) if (stored.checksums[algorithm]) res.setHeader(`x-amz-checksum-${algorithm}`, stored.checksums[algorithm]);
      if (Object.keys(stored.checksums).length > 0) res.setHeader('x-amz-checksum-type', 'FULL_OBJECT');
    }
    const [from, to] = range ?? [0, size - 1];
    if (range) {
      res.statusCode = 206;
      res.setHeader('content-range', `bytes ${from}-${to}/${size}`);
    }
    res.setHeader('content-length', to - from + 1);
    res.end(req.method === 'HEAD' ? undefined : stored.data.subarray(from, to + 1));
  }
}

/** One `bytes=` range as [first, last] within `size`; undefined for none, several or a malformed one (S3 ignores those). */
function parseRange(header: string | undefined, size: number): [number, number] | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first, last] = match as unknown as [string, string, string];
  if ((first === '' && last === '') || (first !== '' && last !== '' && Number(last) < Number(first))) return undefined;
  let range: [number, number] | undefined;
  if (first !== '') range = [Number(first), last === '' ? size - 1 : Math.min(Number(last), size - 1)];
  else if (last !== '') range = [Math.max(size - Number(last), 0), size - 1];
  if (!range || range[0] > range[1] || range[0] >= size) {
    throw new S3StandInError(416, 'InvalidRange', 'The requested range is not satisfiable', { RangeRequested: header, ActualObjectSize: String(size) });
  }
  return range;
}

function xml(res: http.ServerResponse, status: number, document: string): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/xml');
  res.end(document);
}
