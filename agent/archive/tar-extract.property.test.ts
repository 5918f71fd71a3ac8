// Property tests: whatever the archive's bytes or entries, extraction ends and changes nothing outside its target.
import fc from 'fast-check';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractArchive } from './tar-extract.ts';
import { packDirectories } from './tar-pack.ts';

let archive: Buffer;

beforeAll(async () => {
  const source = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-fuzz-src-'));
  await mkdir(path.join(source, 'dir/sub'), { recursive: true });
  await writeFile(path.join(source, 'dir/sub/data.bin'), Buffer.alloc(5000, 1));
  await writeFile(path.join(source, 'notes.txt'), 'hello\n');
  await writeFile(path.join(source, `${'n'.repeat(150)}.txt`), 'long name');
  await symlink('dir/sub/data.bin', path.join(source, 'link'));
  const packed = packDirectories([{ dir: source, entryPrefix: '' }]);
  const chunks: Buffer[] = [];
  for await (const chunk of packed.stream) chunks.push(chunk as Buffer);
  archive = Buffer.concat(chunks);
});

/** Extracts into sandbox/target with a time limit; checks that nothing appeared in the sandbox outside target. */
async function extractsSafely(bytes: Buffer): Promise<void> {
  const sandbox = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-fuzz-'));
  const target = path.join(sandbox, 'target');
  await mkdir(target);
  try {
    let hangTimer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      extractArchive(Readable.from([bytes]), { root: target, allowedRoots: [target] }).then(
        () => 'extracted',
        () => 'refused',
      ),
      new Promise<string>((resolve) => {
        hangTimer = setTimeout(() => resolve('hung'), 5000);
      }),
    ]).finally(() => clearTimeout(hangTimer));
    expect(outcome).not.toBe('hung');
    expect(await readdir(sandbox)).toEqual(['target']);
  } finally {
    await rm(sandbox, { recursive: true, force: true });
  }
}

/** Hundreds of extractions per property: far more than the unit suite's 10 s per test on a busy machine needs. */
const PROPERTY_TIMEOUT_MS = 120_000;

describe('extractArchive on mutated archives', () => {
  it('never hangs, crashes or writes outside its target when bytes are flipped', { timeout: PROPERTY_TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 }), async (flips) => {
        const bytes = Buffer.from(archive);
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        await extractsSafely(bytes);
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  it('never hangs, crashes or writes outside its target when cut short or padded with noise', { timeout: PROPERTY_TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.uint8Array({ maxLength: 2048 }), async (cut, noise) => {
        await extractsSafely(Buffer.concat([archive.subarray(0, cut % archive.length), noise]));
      }),
      { numRuns: 200, seed: 12 },
    );
  });

  it('never hangs or crashes on random bytes', { timeout: PROPERTY_TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 4096 }), async (bytes) => extractsSafely(Buffer.from(bytes))),
      { numRuns: 200, seed: 13 },
    );
  });
});

/** Every path under dir but `skip`, with kind, owner, mode, time and content. */
async function describeTree(dir: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const st = await lstat(d);
    const content = st.isFile() ? await readFile(d, 'utf8') : st.isSymbolicLink() ? await readlink(d) : '';
    out.push(`${path.relative(dir, d)} ${st.uid}:${st.gid} ${(st.mode & 0o177777).toString(8)} ${st.mtimeMs} ${content}`);
    if (st.isDirectory()) for (const name of (await readdir(d)).sort()) if (path.join(d, name) !== skip) await walk(path.join(d, name));
  };
  await walk(dir);
  return out;
}

type Crafted = { name: string; type: 'file' | 'directory' | 'symlink'; link: string; mode: number };

async function craftedArchive(entries: readonly Crafted[], target: string): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const header = {
      name: e.name,
      type: e.type,
      mode: e.mode,
      uid: 4242,
      gid: 4242,
      mtime: new Date(86_400_000),
      ...(e.type === 'symlink' ? { linkname: e.link.replace('TARGET', target) } : {}),
    };
    await new Promise<void>((resolve, reject) => pack.entry(header, e.type === 'file' ? 'owned' : '', (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('extractArchive on crafted chains of symlinks, directories and files', () => {
  // Links that pass the lexical check but lead out on disk ("a" to the target itself, then "a/x/../../victim").
  const component = fc.constantFrom('a', 'b', 'x', 'esc');
  const name = fc.array(component, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('/'));
  const link = fc.constantFrom('TARGET', 'TARGET/x', 'a', 'a/x/../../victim', 'esc/../..', 'x/..', 'b', '.', 'a/x/..', 'esc/victim');
  const entry = fc.record({ name, type: fc.constantFrom<Crafted['type']>('file', 'directory', 'symlink'), link, mode: fc.integer({ min: 0, max: 0o7777 }) });

  const trap: Crafted[] = [
    { name: 'x', type: 'directory', link: '', mode: 0o755 },
    { name: 'a', type: 'symlink', link: 'TARGET', mode: 0o777 },
    { name: 'esc', type: 'symlink', link: 'a/x/../../victim', mode: 0o777 },
  ];

  it('never writes, or changes an owner, mode or time, outside the target', { timeout: PROPERTY_TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(entry, { minLength: 1, maxLength: 6 }), async (trapFirst, rest) => {
        const entries = trapFirst ? [...trap, ...rest] : rest;
        const sandbox = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-chain-'));
        const target = path.join(sandbox, 'target');
        await mkdir(target);
        await mkdir(path.join(sandbox, 'victim', 'x'), { recursive: true });
        await writeFile(path.join(sandbox, 'victim', 'secret'), 'untouched');
        try {
          const before = await describeTree(sandbox, target);
          const bytes = await craftedArchive(entries, target);
          await extractArchive(Readable.from([bytes]), { root: target, allowedRoots: [target] }).catch(() => undefined);
          expect(await describeTree(sandbox, target)).toEqual(before);
        } finally {
          await rm(sandbox, { recursive: true, force: true });
        }
      }),
      // Seeded: the same 300 archives on every run.
      { numRuns: 300, seed: 15 },
    );
  });
});
