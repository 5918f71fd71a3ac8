import { describe, expect, it } from 'vitest';
import { locationOf, parseAge, parseArgs, UsageError } from './command-args.ts';

describe('snapshot command arguments', () => {
  it('splits flags, switches and positional arguments', () => {
    const args = parseArgs(['job-1', '--json', '--s3', 's3://b/p', '--older-than=2d', 'snap'], ['json']);
    expect(args.positional).toEqual(['job-1', 'snap']);
    expect(Object.fromEntries(args.flags)).toEqual({ json: true, s3: 's3://b/p', 'older-than': '2d' });
    expect(() => parseArgs(['--s3'], [])).toThrow(new UsageError('--s3 needs a value'));
  });

  it('takes the prefix from --s3, else SPOTSNAP_S3_URI, and names a bad one', () => {
    expect(locationOf(parseArgs(['--s3', 's3://bucket/x'], []), {})).toEqual({ bucket: 'bucket', prefix: 'x' });
    expect(locationOf(parseArgs([], []), { SPOTSNAP_S3_URI: 's3://other' })).toEqual({ bucket: 'other', prefix: '' });
    expect(() => locationOf(parseArgs([], []), {})).toThrow(/pass --s3 s3:\/\/BUCKET\/PREFIX or set SPOTSNAP_S3_URI/);
    expect(() => locationOf(parseArgs(['--s3', 'http://x'], []), {})).toThrow('--s3 "http://x" is not s3://BUCKET/PREFIX');
  });

  it('reads ages in minutes, hours and days', () => {
    expect(parseAge('30m', '7d')).toBe(1_800_000);
    expect(parseAge(undefined, '7d')).toBe(604_800_000);
    expect(() => parseAge('soon', '7d')).toThrow('--older-than "soon" is not an age like 30m, 12h or 7d');
  });
});
