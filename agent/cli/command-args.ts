// Parses the flags of the snapshot commands (ls, inspect, prune) and finds the S3 prefix they work on.
import { parseS3Uri, type S3Location } from '../config/config.ts';

/** A command line that cannot be used, with what to do instead. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface CommandArgs {
  positional: string[];
  flags: Map<string, string | true>;
}

/** Splits `--name value`, `--name=value` and bare `--switch` flags from positional arguments. */
export function parseArgs(argv: readonly string[], switches: readonly string[]): CommandArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (switches.includes(name)) flags.set(name, true);
    else if (inline !== undefined) flags.set(name, inline);
    else if (i + 1 < argv.length) flags.set(name, argv[++i]!);
    else throw new UsageError(`--${name} needs a value`);
  }
  return { positional, flags };
}

/** The prefix from --s3, else SPOTSNAP_S3_URI. */
export function locationOf(args: CommandArgs, env: NodeJS.ProcessEnv): S3Location {
  const raw = args.flags.get('s3') ?? env.SPOTSNAP_S3_URI;
  if (typeof raw !== 'string' || raw.trim() === '') throw new UsageError('no S3 prefix: pass --s3 s3://BUCKET/PREFIX or set SPOTSNAP_S3_URI');
  const location = parseS3Uri(raw.trim());
  if (!location) throw new UsageError(`--s3 ${JSON.stringify(raw)} is not s3://BUCKET/PREFIX`);
  return location;
}

/** Parses an age like 30m, 12h or 7d into milliseconds. */
export function parseAge(raw: string | true | undefined, fallback: string): number {
  const value = raw === undefined ? fallback : raw;
  const match = typeof value === 'string' ? /^(\d+)(m|h|d)$/.exec(value.trim()) : null;
  if (!match) throw new UsageError(`--older-than ${JSON.stringify(value)} is not an age like 30m, 12h or 7d`);
  return Number(match[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd'];
}
