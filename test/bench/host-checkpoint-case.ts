// One task of the host benchmark that only checkpoints, for a size whose snapshot the machine could not hold beside it: a plain upload of as many bytes, then spotsnap's first checkpoint at a notice, both against a stand-in that checks and drops the packs.
//
// On the 128 GiB GPU host a 64 GiB task and its 64 GiB snapshot on tmpfs do not fit together. Real S3 is on
// other machines and costs the instance nothing but the sends; a stand-in that checks each body against its
// checksums and keeps none of it is nearer that than one that stores it. The plain dump is not measured (its
// images would not fit beside the task either), nor a restore or a second checkpoint: the results say so.
import { randomFillSync } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { jobEnv } from '../support/job-env.ts';
import { measurePlainUpload } from './bench-limits.ts';
import type { CheckpointOnlyResult, MemoryKind } from './bench-results.ts';
import { experimentEnv } from './experiment-env.ts';
import { attempt, checkpointAtNotice, emptyBucket, makeCasePlace, WAIT_MS, type HostTarget } from './host-bench-case.ts';

/** The plain upload's piece: the agent's pack size. */
const PIECE_BYTES = 8 << 20;

/** A piece of bytes of the task's kind: random, or lines of bases as bench-task.py writes them. */
function pieceOf(kind: MemoryKind): Buffer {
  const bytes = randomFillSync(Buffer.allocUnsafe(PIECE_BYTES));
  if (kind === 'text') for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i]! < 252 ? 'ACGT'.charCodeAt(bytes[i]! & 3) : 10;
  return bytes;
}

/** Measures the first checkpoint of a task of `mib` MiB of `kind` memory against the dropping stand-in of `t`. */
export async function hostCheckpointCase(mib: number, kind: MemoryKind, t: HostTarget): Promise<CheckpointOnlyResult> {
  const { id, bucket, bucketDir, caseDir } = await makeCasePlace(mib, kind, t);
  console.log(`\n== ${mib} MiB, ${kind} memory, on the host, checkpoint only`);

  // 1. Plain upload of as many bytes as the task holds: one piece of its kind of bytes, sent over and over (what
  // the bytes are does not change what a plain PUT costs; the stand-in drops them).
  const piece = path.join(caseDir, 'piece.bin');
  await writeFile(piece, pieceOf(kind));
  const pieces = Math.ceil((mib * 2 ** 20) / PIECE_BYTES);
  const up = await measurePlainUpload(
    t.s3Endpoint,
    bucket,
    Array.from({ length: pieces }, () => piece),
    { prefix: 'plain/' },
  );
  await emptyBucket(bucketDir);
  console.log(`plain upload of ${pieces} pieces: ${(up.seconds * 1000).toFixed(0)} ms (${up.inFlight} in flight)`);

  // 2. spotsnap's first checkpoint at a notice.
  const jobId = `host-bench-${id}`;
  const jobDir = path.join(caseDir, 'job');
  await mkdir(jobDir);
  const env = {
    ...jobEnv({ s3Endpoint: t.s3Endpoint, imdsUrl: t.imds.url, bucket, jobId, attempt: 1 }),
    SPOTSNAP_WORK_DIR: path.join(caseDir, 'work'),
    SPOTSNAP_CHECKPOINT_INTERVAL: 'off',
    ...experimentEnv(),
  };
  const first = attempt(t, jobDir, mib, kind, env);
  await first.waitFor(/^ready/m, WAIT_MS);
  const { line, figures } = await checkpointAtNotice(t, first);
  await emptyBucket(bucketDir);
  await rm(caseDir, { recursive: true, force: true });

  const result: CheckpointOnlyResult = {
    mib,
    kind,
    plainBytes: up.bytes,
    limits: { uploadMs: Math.round(up.seconds * 1000), uploadInFlight: up.inFlight },
    first: { ...figures, imageBytes: Number(line.imageBytes), msBeforeDeadline: Number(line.msBeforeDeadline) },
  };
  console.log(`spotsnap: first ${result.first.totalMs} ms against a plain upload of ${result.limits.uploadMs} ms`);
  return result;
}
