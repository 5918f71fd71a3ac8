// What the S3 stand-ins read from a request's query string: the sub-resources they do not serve, and a ListObjectsV2 request's parameters.
import type { ListRequest } from './s3-stand-in-listing.ts';
import { S3StandInError } from './s3-stand-in-xml.ts';

/** Query parameters that name an S3 sub-resource or operation the stand-ins do not serve. */
const UNSERVED_QUERY = [
  'uploads',
  'uploadId',
  'partNumber',
  'acl',
  'tagging',
  'versioning',
  'versions',
  'policy',
  'cors',
  'lifecycle',
  'encryption',
  'attributes',
  'restore',
  'select',
  'retention',
  'legal-hold',
  'object-lock',
  'notification',
  'website',
  'logging',
  'versionId',
];

/** The first query parameter of `query` that names something the stand-ins do not serve; undefined when none does. */
export function unservedQueryParameter(query: URLSearchParams): string | undefined {
  return UNSERVED_QUERY.find((q) => query.has(q));
}

/** A ListObjectsV2 request's query, checked as S3 checks it: the listing asked for, and whether keys go back URL-encoded. */
export function parseListObjectsV2Query(query: URLSearchParams): { request: ListRequest; urlEncoded: boolean } {
  const maxKeysText = query.get('max-keys') ?? '1000';
  if (!/^\d+$/.test(maxKeysText))
    throw new S3StandInError(400, 'InvalidArgument', `Provided max-keys not an integer or within integer range: ${JSON.stringify(maxKeysText)}`, {
      ArgumentName: 'max-keys',
    });
  const encoding = query.get('encoding-type');
  if (encoding !== null && encoding !== 'url')
    throw new S3StandInError(400, 'InvalidArgument', `Invalid Encoding Method specified in Request: ${JSON.stringify(encoding)}`);
  const request = {
    prefix: query.get('prefix') ?? '',
    maxKeys: Math.min(Number(maxKeysText), 1000),
    ...(query.get('delimiter') ? { delimiter: query.get('delimiter')! } : {}),
    ...(query.has('start-after') ? { startAfter: query.get('start-after')! } : {}),
    ...(query.has('continuation-token') ? { continuationToken: query.get('continuation-token')! } : {}),
  };
  return { request, urlEncoded: encoding === 'url' };
}
