// Tests that snapshot archives round-trip exactly: contents, FIFOs, absolute roots, modes and owners.
import { chmod, lstat, mkdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { crafted, tempDir, tree } from './tar-archive-fixtures.ts';
import { extractArchive, undoExtraction } from './tar-extract.ts';
import { packDirectories } from './tar-pack.ts';
import { deviceNumbers } from './special-files.ts';

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

  it('puts a harmless character device back as what it is, and leaves a disk out of the archive', async () => {
    const source = await tempDir();
    await execa('mknod', ['-m', '620', path.join(source, 'null'), 'c', '1', '3']);
    await execa('mknod', ['-m', '600', path.join(source, 'disk'), 'b', '7', '0']);
    const packed = packDirectories([{ dir: source, entryPrefix: '' }]);
    const target = await tempDir();
    await extractArchive(packed.stream, { root: target, allowedRoots: [target] });
    const restored = await lstat(path.join(target, 'null'));
    expect(restored.isCharacterDevice()).toBe(true);
    expect(deviceNumbers(restored.rdev)).toEqual({ major: 1, minor: 3 });
    expect(restored.mode & 0o7777).toBe(0o620);
    expect((await packed.done).skipped).toEqual([path.join(source, 'disk')]);
    await expect(lstat(path.join(target, 'disk'))).rejects.toThrow(/ENOENT/);
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
