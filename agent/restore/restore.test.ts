// restoreNewestSnapshot against a fake store: what it tries, in which order, and what it says of each snapshot refused.
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { sampleManifest } from '../../test/support/sample-manifest.ts';
import { readConfig, type AgentConfig } from '../config/config.ts';
import type { Manifest } from '../store/manifest.ts';
import { isStreamedImage, restoreImagesDir, restoreNewestSnapshot, streamingRelay, type RestoreStore } from './restore.ts';

const command = ['python3', 'task.py'];

function config(): AgentConfig {
  const result = readConfig({ SPOTSNAP_ENABLED: 'true', SPOTSNAP_S3_URI: 's3://bucket/prefix', SPOTSNAP_PATHS: '/work', SPOTSNAP_JOB_ID: 'job-1' }, '/work');
  if (result.kind !== 'enabled') throw new Error(`test configuration refused: ${JSON.stringify(result)}`);
  return result.config;
}

/** A store holding `ids`, whose manifests were all taken from another command line; it records the manifests read. */
function fakeStore(ids: string[], ended?: number): RestoreStore & { read: string[] } {
  const read: string[] = [];
  const unused = (): never => {
    throw new Error('no chunk may be read from a snapshot that was refused');
  };
  return {
    read,
    committedSnapshotIds: async () => ids,
    lastEndedAttempt: async () => ended,
    readManifest: async (id: string): Promise<Manifest> => {
      read.push(id);
      return sampleManifest({ jobId: 'job-1', snapshotId: id, paths: ['/work'] });
    },
    readPackRange: unused,
    getChunk: unused,
  };
}

/** A logger whose lines the test reads. */
function capturingLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, log: pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) }) };
}

const noCriu = {
  startRestore: () => Promise.reject(new Error('CRIU must not run for a refused snapshot')),
  restoreFailure: async () => '',
};

describe('restoreNewestSnapshot', () => {
  it('tries the three newest, refuses each incompatible one with the reason, and reads no more', async () => {
    const ids = ['a0001-20261121T090000000Z', 'a0002-20261121T100000000Z', 'a0003-20261121T110000000Z', 'a0004-20261121T120000000Z'];
    const store = fakeStore([...ids].reverse());
    const { log, lines } = capturingLog();
    const outcome = await restoreNewestSnapshot({ config: config(), criu: noCriu, store, command, clock: new FakeClock(), log });
    const why = 'not restorable: it was taken from a different command line';
    expect(outcome).toEqual({
      kind: 'none',
      hadSnapshots: true,
      reasons: [`a0004-20261121T120000000Z: ${why}`, `a0003-20261121T110000000Z: ${why}`, `a0002-20261121T100000000Z: ${why}`],
    });
    expect(store.read).toEqual(['a0004-20261121T120000000Z', 'a0003-20261121T110000000Z', 'a0002-20261121T100000000Z']);
    expect(lines.filter((l) => l.msg === 'snapshot could not be restored; trying the one before').map((l) => l.snapshotId)).toEqual(store.read);
  });

  it("starts from scratch when the task ended after the job's snapshots were taken, reading none of them", async () => {
    const store = fakeStore(['a0002-20261121T100000000Z', 'a0001-20261121T090000000Z'], 2);
    const outcome = await restoreNewestSnapshot({ config: config(), criu: noCriu, store, command, clock: new FakeClock(), log: capturingLog().log });
    expect(outcome).toEqual({ kind: 'none', hadSnapshots: false, reasons: ["the task ended in attempt 2 after the job's snapshots were taken"] });
    expect(store.read).toEqual([]);
  });

  it('says when the job has no snapshot at all', async () => {
    const outcome = await restoreNewestSnapshot({
      config: config(),
      criu: noCriu,
      store: fakeStore([]),
      command,
      clock: new FakeClock(),
      log: capturingLog().log,
    });
    expect(outcome).toEqual({ kind: 'none', hadSnapshots: false, reasons: ['no committed snapshot for job job-1'] });
  });
});

describe('streamingRelay', () => {
  it('streams through the relay found on the PATH, and says why not without one or with a socket path too long', async () => {
    const bin = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-bin-'));
    const relay = path.join(bin, 'spotsnap-image-relay');
    await writeFile(relay, '#!/bin/sh\n');
    await chmod(relay, 0o755);
    const dir = restoreImagesDir('/var/lib/spotsnap', 'a0001-20261204T050922221Z');
    expect(dir).toBe('/var/lib/spotsnap/restore/a0001-20261204T050922221Z/images');
    expect(streamingRelay(dir, `/nonexistent:${bin}`)).toEqual({ relay });
    expect(streamingRelay(dir, '/nonexistent')).toEqual({ why: "no spotsnap-image-relay on the agent's PATH (it ships in the bundle's bin/)" });
    const long = restoreImagesDir(`/${'w'.repeat(60)}`, 'a0001-20261204T050922221Z');
    expect(streamingRelay(long, bin)).toEqual({ why: `${long}/streamer-serve.sock is longer than a UNIX socket path may be (107 bytes)` });
  });

  it('streams the memory pages, and downloads the other images first', () => {
    const image = (name: string) => ({ name, bytes: 1, chunks: [] });
    expect(['pages-1.img', 'pages-12.img'].map((n) => isStreamedImage(image(n)))).toEqual([true, true]);
    expect(['pagemap-7.img', 'core-7.img', 'inventory.img', 'tmpfs-dev-68.tar.gz.img'].map((n) => isStreamedImage(image(n)))).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });
});
