// Tests that extraction refuses entries that escape its roots or never occur in a snapshot, and changes nothing outside.
import { chmod, lstat, mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { crafted, tempDir, tree } from './tar-archive-fixtures.ts';
import { extractArchive, undoExtraction, UnsafeArchiveError, type ExtractResult } from './tar-extract.ts';

/** Every path under dir except those under `skip`, with its kind, owner, mode, size and content: what must stay unchanged. */
async function describeTree(dir: string, skip: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    const st = await lstat(d);
    const content = st.isFile() ? await readFile(d, 'utf8') : st.isSymbolicLink() ? await readlink(d) : '';
    out.push(`${path.relative(dir, d)} ${st.isDirectory() ? 'd' : st.isFile() ? 'f' : 'l'} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${content}`);
    if (st.isDirectory()) for (const name of (await readdir(d)).sort()) if (path.join(d, name) !== skip) await walk(path.join(d, name));
  };
  await walk(dir);
  return out;
}

describe('extractArchive refuses entries that escape or are never in a snapshot', () => {
  it.each<[string, Partial<tar.Header> & { name: string }, RegExp]>([
    ['a ".." path', { name: '../escape.txt' }, /".." in name/],
    ['a nested ".." path', { name: 'a/../../escape.txt' }, /".." in name/],
    ['an absolute path', { name: '/etc/passwd' }, /absolute name/],
    ['a symlink to an absolute path outside', { name: 'evil', type: 'symlink', linkname: '/etc' }, /points outside/],
    ['a symlink climbing out', { name: 'evil', type: 'symlink', linkname: '../../..' }, /points outside/],
    ['a hard link', { name: 'hard', type: 'link', linkname: '/etc/passwd' }, /entry type "link"/],
    [
      'a character device that grants access (/dev/mem)',
      { name: 'mem', type: 'character-device', devmajor: 1, devminor: 1 },
      /character device 1:1 is not one a snapshot may recreate/,
    ],
    ['a block device', { name: 'disk', type: 'block-device' }, /entry type "block-device"/],
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

  // "a" points at the root itself and "esc" climbs out of it: lexically "a/x/../../victim" is root/victim,
  // physically it is the root's parent's victim. Every entry through "esc" must be refused.
  it.each<[string, Partial<tar.Header> & { name: string }, RegExp]>([
    ['a directory entry over the link', { name: 'esc', type: 'directory', mode: 0o777 }, /over an existing symlink/],
    ['a directory under the link', { name: 'esc/made', type: 'directory' }, /resolves to .*outside/],
    ['a file two levels under the link', { name: 'esc/made/f', type: 'file' }, /resolves to .*outside/],
    ['a file under the link', { name: 'esc/f', type: 'file' }, /resolves to .*outside/],
    ['a symlink under the link', { name: 'esc/l', type: 'symlink', linkname: '.' }, /resolves to .*outside/],
  ])('refuses %s that physically leaves the root, changing nothing outside', async (_what, last, message) => {
    const sandbox = await tempDir();
    const root = path.join(sandbox, 'root');
    const victim = path.join(sandbox, 'victim');
    await mkdir(root);
    await mkdir(victim, { mode: 0o700 });
    await chmod(victim, 0o700);
    await writeFile(path.join(victim, 'secret'), 'untouched', { mode: 0o600 });
    const before = await describeTree(sandbox, root);
    const archive = await crafted([
      { header: { name: 'x', type: 'directory' } },
      { header: { name: 'a', type: 'symlink', linkname: root } },
      { header: { name: 'esc', type: 'symlink', linkname: 'a/x/../../victim' } },
      { header: { uid: 4242, gid: 4242, mode: 0o644, ...last }, body: last.type === 'file' ? 'owned' : '' },
    ]);
    const error = await extractArchive(archive, { root, allowedRoots: [root] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsafeArchiveError);
    expect((error as Error).message).toMatch(message);
    expect(await describeTree(sandbox, root)).toEqual(before);
  });

  it('refuses a directory entry over an existing file, leaving the file as it was', async () => {
    const target = await tempDir();
    await writeFile(path.join(target, 'f'), 'mine', { mode: 0o600 });
    const archive = await crafted([{ header: { name: 'f', type: 'directory', mode: 0o777 } }]);
    await expect(extractArchive(archive, { root: target, allowedRoots: [target] })).rejects.toThrow(/"f": a directory entry over an existing file/);
    expect(await readFile(path.join(target, 'f'), 'utf8')).toBe('mine');
    expect((await lstat(path.join(target, 'f'))).mode & 0o7777).toBe(0o600);
  });

  it('extracts under a root whose parent is a symlinked directory, and refuses a root that is a symlink itself', async () => {
    const base = await tempDir();
    await mkdir(path.join(base, 'mnt/nvme/scratch'), { recursive: true });
    await symlink(path.join(base, 'mnt/nvme'), path.join(base, 'fast'));
    await symlink(path.join(base, 'mnt/nvme/scratch'), path.join(base, 'scratch'));
    const under = path.join(base, 'fast/scratch');
    await extractArchive(await crafted([{ header: { name: 'run/out.txt', type: 'file' }, body: 'out' }]), { root: under, allowedRoots: [under] });
    expect(await readFile(path.join(base, 'mnt/nvme/scratch/run/out.txt'), 'utf8')).toBe('out');
    const link = path.join(base, 'scratch');
    await expect(extractArchive(await crafted([{ header: { name: 'f', type: 'file' }, body: 'x' }]), { root: link, allowedRoots: [link] })).rejects.toThrow(
      /resolves to .*outside/,
    );
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
