// What the verbs share once their command line is parsed: the usage error, the S3 prefix they work on, and ages.
import { parseS3Uri, type S3Location } from '../config/config.ts';

/** A command line that cannot be used, with what to do instead: exit 64, the message and the verb's usage. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The prefix from --s3 (or an argument), else SPOTSNAP_S3_URI. */
export function locationOf(s3: string | undefined, env: NodeJS.ProcessEnv): S3Location {
  const raw = s3 ?? env.SPOTSNAP_S3_URI;
  if (raw === undefined || raw.trim() === '') throw new UsageError('no S3 prefix: pass --s3 s3://BUCKET/PREFIX or set SPOTSNAP_S3_URI');
  const location = parseS3Uri(raw.trim());
  if (!location) throw new UsageError(`${s3 === undefined ? 'SPOTSNAP_S3_URI' : '--s3'} ${JSON.stringify(raw)} is not s3://BUCKET/PREFIX`);
  return location;
}

/** Parses an age like 30m, 12h or 7d into milliseconds. */
export function parseAge(raw: string | undefined, fallback: string): number {
  const value = raw ?? fallback;
  const match = /^(\d+)(m|h|d)$/.exec(value.trim());
  if (!match) throw new UsageError(`--older-than ${JSON.stringify(value)} is not an age like 30m, 12h or 7d`);
  return Number(match[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd'];
}
