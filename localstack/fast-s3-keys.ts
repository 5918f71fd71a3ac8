// Where the fast S3 stand-in keeps an object: one file per key in its bucket's directory, the key escaped into the name.
import { S3StandInError } from './s3-stand-in-xml.ts';

/** The longest file name Linux file systems take (NAME_MAX, in bytes). */
const NAME_MAX = 255;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * The file name of `key`: every byte outside `A-Za-z0-9-_.~` percent-escaped (`/` included, so a bucket is one
 * flat directory and `a` and `a/b` can both exist), and a leading `.` too, so no key is a dot file: the
 * stand-in's temporary files start with one and listings skip them.
 */
export function fileNameOfKey(key: string): string {
  let name: string;
  try {
    name = encodeURIComponent(key).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  } catch {
    throw new S3StandInError(400, 'InvalidArgument', `the key ${JSON.stringify(key)} is not valid UTF-8`);
  }
  if (name.startsWith('.')) name = `%2E${name.slice(1)}`;
  if (name.length > NAME_MAX) {
    throw new S3StandInError(
      400,
      'KeyTooLongError',
      `the fast S3 stand-in keeps each key as a file name of at most ${NAME_MAX} bytes once escaped; ${JSON.stringify(key.slice(0, 80))}... ` +
        `escapes to ${name.length}: use a shorter key`,
    );
  }
  return name;
}

/** The key a file of a bucket's directory holds; undefined for the stand-in's own (dot) files. */
export function keyOfFileName(name: string): string | undefined {
  if (name.startsWith('.')) return undefined;
  try {
    return decodeURIComponent(name);
  } catch {
    return undefined;
  }
}

/** Throws InvalidBucketName unless `name` is a bucket name S3 takes (which is also a safe directory name). */
export function checkBucketName(name: string): void {
  if (!BUCKET_NAME.test(name) || name.includes('..')) {
    throw new S3StandInError(
      400,
      'InvalidBucketName',
      `The specified bucket is not valid: ${JSON.stringify(name)} (S3 names a bucket with 3 to 63 of a-z, 0-9, '.' and '-')`,
      { BucketName: name },
    );
  }
}

/** The bucket and key of a path-style request path (`/bucket/key/with/slashes`), each segment percent-decoded. */
export function parsePathStyle(rawPath: string): { bucket: string; key: string } {
  const [bucket = '', ...rest] = rawPath.slice(1).split('/');
  try {
    return { bucket: decodeURIComponent(bucket), key: rest.map((s) => decodeURIComponent(s)).join('/') };
  } catch {
    throw new S3StandInError(400, 'InvalidURI', `Couldn't parse the specified URI: ${JSON.stringify(rawPath.slice(0, 200))}`);
  }
}
