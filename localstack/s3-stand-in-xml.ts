// The S3 stand-in's XML: error documents, listings and delete results as S3 writes them, and the DeleteObjects body read back.

/** An S3 error answer: the HTTP status, S3's error code and a message that says what was wrong. */
export class S3StandInError extends Error {
  readonly status: number;
  readonly code: string;
  /** Extra elements of the error document, e.g. { Key: 'a/b' } or { BucketName: 'b' }. */
  readonly details: Record<string, string>;
  constructor(status: number, code: string, message: string, details: Record<string, string> = {}) {
    super(message);
    this.name = 'S3StandInError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

export function unescapeXml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos|#x[0-9a-fA-F]+|#\d+);/g, (_, name: string) => {
    if (name.startsWith('#x')) return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith('#')) return String.fromCodePoint(Number.parseInt(name.slice(1), 10));
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[name]!;
  });
}

const XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';
const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** `<Name>value</Name>` for each defined entry, in order. */
function elements(entries: Array<[string, string | number | boolean | undefined]>): string {
  return entries
    .filter((e): e is [string, string | number | boolean] => e[1] !== undefined)
    .map(([name, value]) => `<${name}>${escapeXml(String(value))}</${name}>`)
    .join('');
}

export function errorDocument(error: S3StandInError, requestId: string): string {
  const details = Object.entries(error.details);
  return `${XML_HEAD}<Error>${elements([['Code', error.code], ['Message', error.message], ...details, ['RequestId', requestId]])}</Error>`;
}

export interface ListedObject {
  key: string;
  bytes: number;
  etag: string;
  lastModified: Date;
}

export interface ListPage {
  bucket: string;
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  startAfter?: string;
  continuationToken?: string;
  nextContinuationToken?: string;
  objects: ListedObject[];
  commonPrefixes: string[];
  /** Keys and prefixes URL-encoded, as `encoding-type=url` asks. */
  urlEncoded: boolean;
}

export function listObjectsV2Document(page: ListPage): string {
  const encode = (s: string | undefined) => (s === undefined || !page.urlEncoded ? s : encodeURIComponent(s).replace(/%2F/g, '/'));
  const contents = page.objects
    .map(
      (o) =>
        `<Contents>${elements([
          ['Key', encode(o.key)],
          ['LastModified', o.lastModified.toISOString()],
          ['ETag', `"${o.etag}"`],
          ['Size', o.bytes],
          ['StorageClass', 'STANDARD'],
        ])}</Contents>`,
    )
    .join('');
  const prefixes = page.commonPrefixes.map((p) => `<CommonPrefixes>${elements([['Prefix', encode(p)]])}</CommonPrefixes>`).join('');
  const head = elements([
    ['Name', page.bucket],
    ['Prefix', encode(page.prefix)],
    ['Delimiter', encode(page.delimiter)],
    ['MaxKeys', page.maxKeys],
    ['KeyCount', page.objects.length + page.commonPrefixes.length],
    ['IsTruncated', page.nextContinuationToken !== undefined],
    ['EncodingType', page.urlEncoded ? 'url' : undefined],
    ['StartAfter', encode(page.startAfter)],
    ['ContinuationToken', page.continuationToken],
    ['NextContinuationToken', page.nextContinuationToken],
  ]);
  return `${XML_HEAD}<ListBucketResult xmlns="${S3_NS}">${head}${contents}${prefixes}</ListBucketResult>`;
}

export function listBucketsDocument(buckets: Array<{ name: string; created: Date }>): string {
  const list = buckets
    .map(
      (b) =>
        `<Bucket>${elements([
          ['Name', b.name],
          ['CreationDate', b.created.toISOString()],
        ])}</Bucket>`,
    )
    .join('');
  return `${XML_HEAD}<ListAllMyBucketsResult xmlns="${S3_NS}"><Owner><ID>stand-in</ID><DisplayName>stand-in</DisplayName></Owner><Buckets>${list}</Buckets></ListAllMyBucketsResult>`;
}

/** The most keys one DeleteObjects request may name (S3's limit). */
export const MAX_DELETE_KEYS = 1000;

/** The keys of a DeleteObjects body and whether it asked for a quiet answer; MalformedXML otherwise. */
export function parseDeleteRequest(body: string): { keys: string[]; quiet: boolean } {
  const root = /<Delete(?:\s[^>]*)?>([\s\S]*)<\/Delete>/.exec(body);
  if (!root) throw new S3StandInError(400, 'MalformedXML', 'the DeleteObjects body has no <Delete> element');
  const keys: string[] = [];
  for (const object of root[1]!.matchAll(/<Object>([\s\S]*?)<\/Object>/g)) {
    const key = /<Key>([\s\S]*?)<\/Key>/.exec(object[1]!);
    if (!key) throw new S3StandInError(400, 'MalformedXML', 'an <Object> of the DeleteObjects body has no <Key>');
    keys.push(unescapeXml(key[1]!));
  }
  if (keys.length === 0 || keys.length > MAX_DELETE_KEYS) {
    throw new S3StandInError(400, 'MalformedXML', `a DeleteObjects request names 1 to ${MAX_DELETE_KEYS} keys, not ${keys.length}`);
  }
  return { keys, quiet: /<Quiet>\s*true\s*<\/Quiet>/i.test(root[1]!) };
}

export function deleteResultDocument(deleted: string[]): string {
  const list = deleted.map((key) => `<Deleted>${elements([['Key', key]])}</Deleted>`).join('');
  return `${XML_HEAD}<DeleteResult xmlns="${S3_NS}">${list}</DeleteResult>`;
}
