// A complete, valid manifest for tests to start from.
import type { Manifest } from '../../agent/store/manifest.ts';

export function sampleManifest(overrides: Partial<Manifest> = {}): Manifest {
  return {
    kind: 'spotsnap-snapshot',
    schemaVersion: 6,
    jobId: 'job-1',
    attempt: 1,
    snapshotId: 'a0001-20261121T090000000Z',
    createdAt: '2026-11-21T09:00:01.000Z',
    agentVersion: '0.1.0',
    criu: { version: '4.1.1', versionNumber: 40101 },
    host: { kernel: '6.18.0', arch: 'x64' },
    task: {
      commandSha256: 'a'.repeat(64),
      pipes: { stdout: 'pipe:[1]', stderr: 'pipe:[2]', status: 'pipe:[3]' },
      runMs: 60_000,
      cpuMs: 55_000,
      interruptions: 1,
    },
    paths: ['/work'],
    checkpointKind: 'final',
    notice: { action: 'terminate', time: '2026-11-21T09:02:00Z' },
    images: [
      {
        name: 'pages-1.img',
        bytes: 300,
        chunks: [
          { digest: `blake3:${'b'.repeat(64)}`, bytes: 200, pack: '1'.repeat(32), offset: 0 },
          { digest: `blake3:${'c'.repeat(64)}`, bytes: 100, pack: '1'.repeat(32), offset: 200, encoding: 'zstd', storedBytes: 40 },
        ],
      },
      { name: 'core-1.img', bytes: 10, chunks: [{ digest: `blake3:${'d'.repeat(64)}`, bytes: 10, pack: '1'.repeat(32), offset: 300 }] },
    ],
    files: { bytes: 1024, chunks: [{ digest: `blake3:${'e'.repeat(64)}`, bytes: 1024, pack: '2'.repeat(32), offset: 0 }] },
    outside: {
      roots: ['/tmp', '/var/tmp', '/dev/shm'],
      files: { bytes: 512, chunks: [{ digest: `blake3:${'9'.repeat(64)}`, bytes: 512, pack: '2'.repeat(32), offset: 1024 }] },
      referenced: [{ path: '/usr/lib/x86_64-linux-gnu/libc.so.6', bytes: 2_000_000, mtimeMs: 1_700_000_000_000 }],
    },
    batch: { jobId: 'job-1', arrayIndex: null },
    credentialsRelay: null,
    objects: [{ name: 'criuLog', bytes: 5, sha256: 'f'.repeat(64) }],
    transfer: { uploadedBytes: 1034, uploadedChunks: 3, uploadedPacks: 2, totalBytes: 1334, totalChunks: 4, storedBytes: 1034 },
    timings: { dumpMs: 200, uploadMs: 800, totalMs: 1000, frozenMs: 250 },
    ...overrides,
  };
}
