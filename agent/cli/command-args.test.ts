// The S3 prefix the snapshot verbs work on, and the ages prune takes.
import { describe, expect, it } from 'vitest';
import { locationOf, parseAge, UsageError } from './command-args.ts';

describe('snapshot command arguments', () => {
  it('takes the prefix from --s3, else SPOTSNAP_S3_URI, and names a bad one', () => {
    expect(locationOf('s3://bucket/x', {})).toEqual({ bucket: 'bucket', prefix: 'x' });
    expect(locationOf(undefined, { SPOTSNAP_S3_URI: 's3://other' })).toEqual({ bucket: 'other', prefix: '' });
    expect(() => locationOf(undefined, {})).toThrow(new UsageError('no S3 prefix: pass --s3 s3://BUCKET/PREFIX or set SPOTSNAP_S3_URI'));
    expect(() => locationOf('http://x', {})).toThrow('--s3 "http://x" is not s3://BUCKET/PREFIX');
    expect(() => locationOf(undefined, { SPOTSNAP_S3_URI: 'bucket' })).toThrow('SPOTSNAP_S3_URI "bucket" is not s3://BUCKET/PREFIX');
  });

  it('reads ages in minutes, hours and days', () => {
    expect(parseAge('30m', '7d')).toBe(1_800_000);
    expect(parseAge(undefined, '7d')).toBe(604_800_000);
    expect(() => parseAge('soon', '7d')).toThrow('--older-than "soon" is not an age like 30m, 12h or 7d');
  });
});
