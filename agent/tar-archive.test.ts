import { mkdtemp, mkdir, readFile, readlink, stat, symlink, writeFile, readdir, lstat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { extractArchive, undoExtraction, UnsafeArchiveError, type ExtractResult } from './tar-extract.ts';
import { packDirectories } from './tar-pack.ts';

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'spotsnap-tar-'));
}

/** Builds an archive from raw headers, as an attacker could. */
async function crafted(entries: Array<{ header: Partial<tar.Header> & { name: string }; body?: string }>): Promise<Readable> {
  const pack = tar.pack();
  for (const { header, body } of entries) {
    await new Promise<void>((resolve, reject) => pack.entry(header, body ?? '', (e) => (e ? reject(e) : resolve())));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Readable.from([Buffer.concat(chunks)]);
}

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const full = path.join(dir, name);
    out.push(path.relative(dir, full));
    if ((await lstat(full)).isDirectory()) out.push(...(await tree(full)).map((p) => path.join(name, p)));
  }
  return out;
}

describe('packDirectories + extractArchive', () => {
  it('round-trips files, empty files, directories, modes and symlinks byte for byte', async () => {
    const source = await tempDir();
    await mkdir(path.join(source, 'sub/deeper'), { recursive: true });
    await writeFile(path.join(source, 'big.bin'), Buffer.alloc(3 * 1024 * 1024 + 7, 0xab));
    await writeFile(path.join(source, 'empty'), '');
    await writeFile(path.join(source, 'sub/deeper/run.sh'), '#!/bin/sh\n', { mode: 0o750 });
    await symlink('sub/deeper/run.sh', path.join(source, 'link'));
    // A name longer than the 100 bytes of a plain tar header travels in a pax header.
    await writeFile(path.join(source, 'sub', `${'long-name-'.repeat(15)}.txt`), 'long');

    const packed = packDirectories([{ dir: source, entryPrefix: '' }]);
    const target = await tempDir();
    await extractArchive(packed.stream, { root: target, allowedRoots: [target] });
    expect((await packed.done).files).toBe(4);

    expect(await tree(target)).toEqual(await tree(source));
    // Buffer.equals: a deep toEqual over megabytes is slow.
    expect((await readFile(path.join(target, 'big.bin'))).equals(await readFile(path.join(source, 'big.bin')))).toBe(true);
    expect((await stat(path.join(target, 'empty'))).size).toBe(0);
    expect((await stat(path.join(target, 'sub/deeper/run.sh'))).mode & 0o777).toBe(0o750);
    expect(await readlink(path.join(target, 'link'))).toBe('sub/deeper/run.sh');
  });

  it('puts absolute directories back under their own path, creating a missing root', async () => {
    const base = await tempDir();
    const workDir = path.join(base, 'work');
    await mkdir(workDir);
    await writeFile(path.join(workDir, 'out.txt'), 'state');
    const packed = packDirectories([{ dir: workDir, entryPrefix: workDir.slice(1) }]);
    const chunks: Buffer[] = [];
    for await (const c of packed.stream) chunks.push(c as Buffer);
    await import('node:fs/promises').then((fs) => fs.rm(workDir, { recursive: true }));

    const result = await extractArchive(Readable.from([Buffer.concat(chunks)]), { root: '/', allowedRoots: [workDir] });
    expect(await readFile(path.join(workDir, 'out.txt'), 'utf8')).toBe('state');
    await undoExtraction(result);
    await expect(stat(workDir)).rejects.toThrow(/ENOENT/);
  });
});

describe('extractArchive refuses entries that escape or are never in a snapshot', () => {
  it.each<[string, Partial<tar.Header> & { name: string }, RegExp]>([
    ['a ".." path', { name: '../escape.txt' }, /".." in name/],
    ['a nested ".." path', { name: 'a/../../escape.txt' }, /".." in name/],
    ['an absolute path', { name: '/etc/passwd' }, /absolute name/],
    ['a symlink to an absolute path outside', { name: 'evil', type: 'symlink', linkname: '/etc' }, /points outside/],
    ['a symlink climbing out', { name: 'evil', type: 'symlink', linkname: '../../..' }, /points outside/],
    ['a hard link', { name: 'hard', type: 'link', linkname: '/etc/passwd' }, /entry type "link"/],
    ['a character device', { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }, /entry type "character-device"/],
    ['a block device', { name: 'disk', type: 'block-device' }, /entry type "block-device"/],
    ['a FIFO', { name: 'fifo', type: 'fifo' }, /entry type "fifo"/],
    ['an oversized name', { name: `${'d/'.repeat(2100)}f` }, /name longer than 4096 bytes/],
  ])('refuses %s', async (_what, header, message) => {
    // A private parent, so that "nothing was written outside" can be checked exactly.
    const outside = await tempDir();
    const target = path.join(outside, 'target');
    await mkdir(target);
    const before = await tree(outside);
    const archive = await crafted([{ header: { type: 'file', ...header }, body: header.type && header.type !== 'file' ? '' : 'x' }]);
    const error = await extractArchive(archive, { root: target, allowedRoots: [target] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsafeArchiveError);
    expect((error as Error).message).toMatch(message);
    expect(await tree(target)).toEqual([]);
    expect(await tree(outside)).toEqual(before);
  });

  it('refuses an oversized pax header before buffering it', async () => {
    const header = Buffer.alloc(512);
    header.write('PaxHeader/evil', 0, 'latin1');
    header.write('0000644\0', 100, 'latin1');
    header.write(`${(100 * 1024 * 1024).toString(8).padStart(11, '0')}\0`, 124, 'latin1');
    header.write('x', 156, 'latin1');
    header.write('ustar\x0000', 257, 'latin1');
    header.fill(' ', 148, 156);
    const sum = header.reduce((a, b) => a + b, 0);
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const target = await tempDir();
    const archive = Readable.from([header, Buffer.alloc(64 * 1024)]);
    await expect(extractArchive(archive, { root: target, allowedRoots: [target] })).rejects.toThrow(/"x" metadata header of 104857600 bytes/);
  });

  it('does not write through a symlinked directory planted by an earlier entry', async () => {
    const target = await tempDir();
    const elsewhere = await tempDir();
    // The first entry is a symlink inside the target whose path resolves inside, pointing at a sibling dir
    // that a later step swaps; here the planted link already points outside and must be refused first.
    const archive = await crafted([
      { header: { name: 'dir', type: 'symlink', linkname: elsewhere } },
      { header: { name: 'dir/owned.txt', type: 'file' }, body: 'x' },
    ]);
    await expect(extractArchive(archive, { root: target, allowedRoots: [target] })).rejects.toThrow(UnsafeArchiveError);
    expect(await tree(elsewhere)).toEqual([]);
  });

  it('refuses a file entry inside a pre-existing symlinked directory', async () => {
    const target = await tempDir();
    const elsewhere = await tempDir();
    await symlink(elsewhere, path.join(target, 'dir'));
    const archive = await crafted([{ header: { name: 'dir/owned.txt', type: 'file' }, body: 'x' }]);
    await expect(extractArchive(archive, { root: target, allowedRoots: [target] })).rejects.toThrow(/resolves to .*outside/);
    expect(await tree(elsewhere)).toEqual([]);
  });

  it('undoes what it created before the bad entry', async () => {
    const target = await tempDir();
    await writeFile(path.join(target, 'kept.txt'), 'mine');
    const archive = await crafted([
      { header: { name: 'new/a.txt', type: 'file' }, body: 'a' },
      { header: { name: '../b.txt', type: 'file' }, body: 'b' },
    ]);
    const result: ExtractResult = { entries: 0, created: [] };
    await expect(extractArchive(archive, { root: target, allowedRoots: [target] }, result)).rejects.toThrow(UnsafeArchiveError);
    await undoExtraction(result);
    expect(await tree(target)).toEqual(['kept.txt']);
  });
});
