// Tests that snapshot archives round-trip exactly and that extraction never writes, or changes owners, outside its roots.
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { execa } from 'execa';
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

  it('puts a named FIFO back as a FIFO, with its mode', async () => {
    const source = await tempDir();
    await execa('mkfifo', ['-m', '640', path.join(source, '.command.po')]);
    const packed = packDirectories([{ dir: source, entryPrefix: '' }]);
    const target = await tempDir();
    await extractArchive(packed.stream, { root: target, allowedRoots: [target] });
    const restored = await lstat(path.join(target, '.command.po'));
    expect(restored.isFIFO()).toBe(true);
    expect(restored.mode & 0o7777).toBe(0o640);
    expect((await packed.done).skipped).toEqual([]);
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

describe('extractArchive restores modes and owners exactly', () => {
  it('keeps group and other write bits, setuid, setgid and sticky, whatever the umask', async () => {
    const target = await tempDir();
    const asRoot = process.getuid?.() === 0;
    const owner = asRoot ? { uid: 4321, gid: 4321 } : {};
    const archive = await crafted([
      { header: { name: 'shared', type: 'directory', mode: 0o1777, ...owner } },
      { header: { name: 'shared/notes', type: 'file', mode: 0o664, ...owner }, body: 'n' },
      { header: { name: 'setuid', type: 'file', mode: 0o4755, ...owner }, body: '#!/bin/sh\n' },
      { header: { name: 'group', type: 'directory', mode: 0o2775, ...owner } },
      { header: { name: 'closed', type: 'directory', mode: 0o555 } },
      { header: { name: 'closed/inside', type: 'file', mode: 0o444 }, body: 'i' },
    ]);
    await extractArchive(archive, { root: target, allowedRoots: [target] });
    const modeOf = async (name: string): Promise<number> => (await lstat(path.join(target, name))).mode & 0o7777;
    expect(await modeOf('shared')).toBe(0o1777);
    expect(await modeOf('shared/notes')).toBe(0o664);
    expect(await modeOf('setuid')).toBe(0o4755);
    expect(await modeOf('group')).toBe(0o2775);
    expect(await modeOf('closed')).toBe(0o555);
    expect(await modeOf('closed/inside')).toBe(0o444);
    if (asRoot) {
      for (const name of ['shared', 'shared/notes', 'setuid', 'group']) {
        expect(await lstat(path.join(target, name))).toMatchObject({ uid: 4321, gid: 4321 });
      }
    }
  });

  it('gives an existing directory the mode of its entry', async () => {
    const target = await tempDir();
    await mkdir(path.join(target, 'd'));
    await chmod(path.join(target, 'd'), 0o700);
    await extractArchive(await crafted([{ header: { name: 'd', type: 'directory', mode: 0o1777 } }]), { root: target, allowedRoots: [target] });
    expect((await lstat(path.join(target, 'd'))).mode & 0o7777).toBe(0o1777);
  });

  it('round-trips a 1777 directory and a 0664 file packed from disk', async () => {
    const source = await tempDir();
    await mkdir(path.join(source, 'tmp'));
    await chmod(path.join(source, 'tmp'), 0o1777);
    await writeFile(path.join(source, 'tmp/f'), 'f');
    await chmod(path.join(source, 'tmp/f'), 0o664);
    const target = await tempDir();
    await extractArchive(packDirectories([{ dir: source, entryPrefix: '' }]).stream, { root: target, allowedRoots: [target] });
    expect((await lstat(path.join(target, 'tmp'))).mode & 0o7777).toBe(0o1777);
    expect((await lstat(path.join(target, 'tmp/f'))).mode & 0o7777).toBe(0o664);
  });

  it('owns and dates a symlink itself, not what it points to', async () => {
    const target = await tempDir();
    const mtime = new Date('2020-01-02T03:04:05Z');
    await writeFile(path.join(target, 'file'), 'f');
    const before = await lstat(path.join(target, 'file'));
    const owner = process.getuid?.() === 0 ? { uid: 4321, gid: 4321 } : {};
    await extractArchive(await crafted([{ header: { name: 'link', type: 'symlink', linkname: 'file', mtime, ...owner } }]), {
      root: target,
      allowedRoots: [target],
    });
    const link = await lstat(path.join(target, 'link'));
    expect(link.mtime.getTime()).toBe(mtime.getTime());
    if (process.getuid?.() === 0) expect(link).toMatchObject({ uid: 4321, gid: 4321 });
    expect(await lstat(path.join(target, 'file'))).toMatchObject({ uid: before.uid, gid: before.gid, mtimeMs: before.mtimeMs });
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
    await expect(
      extractArchive(await crafted([{ header: { name: 'f', type: 'file' }, body: 'x' }]), { root: link, allowedRoots: [link] }),
    ).rejects.toThrow(/resolves to .*outside/);
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
