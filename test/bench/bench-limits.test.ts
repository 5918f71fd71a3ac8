// The plain S3 limits move exactly the files' bytes: the pieces that land in the fast stand-in's directory are the files one after the other, and all of it comes back.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileNameOfKey } from '../../localstack/fast-s3-keys.ts';
import { startFastS3, type FastS3 } from '../../localstack/fast-s3-server.ts';
import { seededBytes } from '../support/seeded-bytes.ts';
import { measurePlainDownload, measurePlainUpload, plainPieceKeys } from './bench-limits.ts';

const bucket = 'limits';
const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'bench-limits-test-'));
const file = path.join(dir, 'source.bin');
// Three whole pieces of 1 MiB and a short last one.
const source = seededBytes('bench-limits/source', (3 << 20) + 12_345);
const options = { pieceBytes: 1 << 20, inFlight: [2, 3], adaptive: false, prefix: 'plain/' };
let server: FastS3;

beforeAll(async () => {
  writeFileSync(file, source);
  server = await startFastS3({ dir: path.join(dir, 's3'), workers: 2, buckets: [bucket] });
});
afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('plain S3 limits', () => {
  it('upload the file as pieces whose bytes are the file, at each in-flight count, and read them all back', async () => {
    const upload = await measurePlainUpload(server.endpoint, bucket, file, options);
    expect(upload).toMatchObject({ bytes: source.length, pieces: 4, trials: [{ inFlight: 2 }, { inFlight: 3 }] });
    expect([2, 3]).toContain(upload.inFlight);
    expect(upload.seconds).toBe(Math.min(...upload.trials.map((t) => t.seconds)));
    const keys = plainPieceKeys(source.length, options);
    expect(keys).toEqual(['plain/piece-000000', 'plain/piece-000001', 'plain/piece-000002', 'plain/piece-000003']);
    const landed = Buffer.concat(keys.map((key) => readFileSync(path.join(dir, 's3', bucket, fileNameOfKey(key)))));
    expect(landed.equals(source)).toBe(true);

    const download = await measurePlainDownload(server.endpoint, bucket, file, options);
    expect(download).toMatchObject({ bytes: source.length, pieces: 4 });
  });

  it('send several files as one run of bytes, the pieces crossing from one file into the next', async () => {
    // Cut inside the second piece, so that one piece holds the end of the first file and the start of the second.
    const parts = [path.join(dir, 'part-0.bin'), path.join(dir, 'part-1.bin')];
    writeFileSync(parts[0]!, source.subarray(0, (1 << 20) + 777));
    writeFileSync(parts[1]!, source.subarray((1 << 20) + 777));
    const split = { ...options, prefix: 'split/' };
    const upload = await measurePlainUpload(server.endpoint, bucket, parts, split);
    expect(upload).toMatchObject({ bytes: source.length, pieces: 4 });
    const landed = Buffer.concat(plainPieceKeys(source.length, split).map((key) => readFileSync(path.join(dir, 's3', bucket, fileNameOfKey(key)))));
    expect(landed.equals(source)).toBe(true);
    expect(await measurePlainDownload(server.endpoint, bucket, parts, split)).toMatchObject({ bytes: source.length, pieces: 4 });
  });

  it('refuse a download of pieces that are not there, naming the request', async () => {
    await expect(measurePlainDownload(server.endpoint, bucket, file, { ...options, prefix: 'absent/' })).rejects.toThrow(
      /plain GET \/limits\/absent\/piece-00000\d got 404: [\s\S]*<Code>NoSuchKey<\/Code>/,
    );
  });
});
