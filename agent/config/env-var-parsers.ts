// Parsers of single environment values: each takes a value that is set (not blank) and returns it typed, or undefined when it is not of the expected form.
import path from 'node:path';
import type { CheckpointInterval, S3Location } from './config-types.ts';

/** A parser of one set value; undefined means the value is not of the variable's expected form. */
export type ValueParser<T> = (raw: string) => T | undefined;

/** Parses an s3://bucket/prefix URI; returns undefined when it is not one. */
export function parseS3Uri(uri: string): S3Location | undefined {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (!match) return undefined;
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix.split('/').some((part) => part === '..' || part === '.')) return undefined;
  return { bucket: match[1]!, prefix };
}

/** 1, true, yes, on or 0, false, no, off, in any case. */
export const parseBoolean: ValueParser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return undefined;
};

/** One of the allowed words, in any case. */
export function oneOf<T extends string>(allowed: readonly T[]): ValueParser<T> {
  return (raw) => {
    const v = raw.trim().toLowerCase() as T;
    return allowed.includes(v) ? v : undefined;
  };
}

/** The value without the blanks around it. */
export const text: ValueParser<string> = (raw) => raw.trim();

/** Words separated by blanks. */
export const words: ValueParser<string[]> = (raw) => raw.split(/\s+/).filter((a) => a !== '');

/** Digits only, from `min` to `max`. */
export function digitsFrom(min: number, max: number): ValueParser<number> {
  return (raw) => {
    const v = raw.trim();
    const n = Number(v);
    return /^\d+$/.test(v) && n >= min && n <= max ? n : undefined;
  };
}

/** Digits only, a safe integer (from 0). */
export const wholeNumber: ValueParser<number> = (raw) => {
  const v = raw.trim();
  return /^\d+$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : undefined;
};

/** Any number JavaScript reads as a whole number of at least 1 (as the attempt has always been read). */
export const attemptNumber: ValueParser<number> = (raw) => {
  const n = Number(raw.trim());
  return Number.isInteger(n) && n >= 1 ? n : undefined;
};

/** `auto`, in any case, or digits from 1 to 64. */
export const packsInFlight: ValueParser<number | 'auto'> = (raw) => {
  const v = raw.trim().toLowerCase();
  return v === 'auto' ? 'auto' : digitsFrom(1, 64)(v);
};

/** `auto`, in any case, or digits from 1 to 256. */
export const workers: ValueParser<number | 'auto'> = (raw) => {
  const v = raw.trim().toLowerCase();
  return v === 'auto' ? 'auto' : digitsFrom(1, 256)(v);
};

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/** A size in bytes: digits with an optional unit (KiB, MiB, GiB, TiB, binary whatever their spelling). */
export const byteSize: ValueParser<number> = (raw) => {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toLowerCase()] : undefined;
  return match && unit !== undefined ? Number(match[1]) * unit : undefined;
};

/** A price in USD: digits with an optional decimal part. */
export const price: ValueParser<number> = (raw) => {
  const v = raw.trim();
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 && /^\d+(\.\d+)?$/.test(v) ? n : undefined;
};

/** An absolute path. */
export const absolutePath: ValueParser<string> = (raw) => {
  const v = raw.trim();
  return path.isAbsolute(v) ? v : undefined;
};

/** http(s)://HOST[:PORT] with an optional trailing slash, returned without it. */
export const httpEndpoint: ValueParser<string> = (raw) => {
  const v = raw.trim();
  return /^https?:\/\/[^/\s]+\/?$/.test(v) ? v.replace(/\/$/, '') : undefined;
};

/** AES256 or aws:kms, in any case. */
export const sseMode: ValueParser<'AES256' | 'aws:kms'> = (raw) => {
  const v = raw.trim().toLowerCase();
  return v === 'aes256' ? 'AES256' : v === 'aws:kms' ? 'aws:kms' : undefined;
};

/** "90s", "5m", "1h", "auto" or "off" (or 0); at least 5 s between background checkpoints. */
export const checkpointInterval: ValueParser<CheckpointInterval> = (raw) => {
  const value = raw.trim().toLowerCase();
  if (value === 'auto') return { mode: 'auto' };
  if (value === 'off' || value === '0') return { mode: 'off' };
  const match = /^(\d+)(s|m|h)$/.exec(value);
  const ms = match ? Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 's' | 'm' | 'h'] : NaN;
  return ms >= 5_000 ? { mode: 'every', ms } : undefined;
};

/** Letters, digits and . _ : -, starting with a letter or digit, at most 255 characters. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/;

/** A job id of the form JOB_ID_PATTERN. */
export const jobId: ValueParser<string> = (raw) => {
  const v = raw.trim();
  return JOB_ID_PATTERN.test(v) ? v : undefined;
};
