// Tests the criu CLI wrapper: version parsing, log excerpts, and what it runs, against stand-in criu binaries.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CriuCli, CriuError, errorExcerpt, parseCriuVersion } from './criu-cli.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-criu-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A stand-in criu: a shell script with this body, made executable. */
async function fakeCriu(name: string, body: string): Promise<CriuCli> {
  const file = path.join(dir, name);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return new CriuCli(file);
}

describe('parseCriuVersion', () => {
  it('turns "Version: X.Y.Z" into text and one comparable number', () => {
    expect(parseCriuVersion('Version: 4.1.1\n')).toEqual({ text: '4.1.1', number: 40101 });
    expect(parseCriuVersion('Version: 3.17\nGitID: v3.17')).toEqual({ text: '3.17.0', number: 31700 });
    expect(parseCriuVersion('criu: command not found')).toBeUndefined();
  });
});

describe('errorExcerpt', () => {
  it('keeps the Error lines with the lines just before them', () => {
    const log = ['(00.01) one', '(00.02) two', '(00.03) three', '(00.04) Error (criu/files.c:1571): bad fd', '(00.05) after'].join('\n');
    expect(errorExcerpt(log)).toBe(['(00.02) two', '(00.03) three', '(00.04) Error (criu/files.c:1571): bad fd'].join('\n'));
  });

  it('falls back to the last lines when nothing says Error', () => {
    expect(errorExcerpt('a\nb\n\nc\n')).toBe('a\nb\nc');
  });
});

describe('CriuCli.version', () => {
  it('fails with a message naming the binary when CRIU is missing', async () => {
    const error = await new CriuCli('/no/such/criu').version().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CriuError);
    expect((error as Error).message).toMatch(/^"\/no\/such\/criu --version" failed: is CRIU 4\.x installed\?/);
  });
});

describe('CriuCli.check', () => {
  it('runs "criu check" and keeps the lines of stdout and stderr that start with Error', async () => {
    const criu = await fakeCriu(
      'criu-check',
      [
        '[ "$1" = check ] && [ $# -eq 1 ] || exit 2',
        'echo "Warn  (criu/kerndat.c:1): not an error"',
        'echo "Error (criu/cr-check.c:10): tun: Unable to create tun" >&2',
        'echo "Looks bad."',
        'echo "Error (criu/cr-check.c:20): ptrace: bad" >&2',
        'exit 1',
      ].join('\n'),
    );
    expect(await criu.check()).toEqual({
      exitCode: 1,
      errors: ['Error (criu/cr-check.c:10): tun: Unable to create tun', 'Error (criu/cr-check.c:20): ptrace: bad'],
    });
  });

  it('answers exit code 0 and no errors when CRIU is content', async () => {
    const criu = await fakeCriu('criu-check-ok', 'echo "Looks good."');
    expect(await criu.check()).toEqual({ exitCode: 0, errors: [] });
  });

  it('answers no exit code when the binary cannot run', async () => {
    expect(await new CriuCli('/no/such/criu').check()).toEqual({ exitCode: undefined, errors: [] });
  });
});

describe('CriuCli.hasFeature', () => {
  it('asks "criu check --feature NAME" and passes on its exit code 0 only', async () => {
    const criu = await fakeCriu('criu-feature', '[ "$1 $2" = "check --feature" ] && [ "$3" = uffd-noncoop ]');
    expect(await criu.hasFeature('uffd-noncoop')).toBe(true);
    expect(await criu.hasFeature('mem_dirty_track')).toBe(false);
  });
});

describe('CriuCli baseline command lines', () => {
  it("spells out a dump and a detached restore with CRIU's defaults, for the benchmark's raw baseline", () => {
    const criu = new CriuCli();
    expect(criu.baselineDumpCommand(42, '/tmpfs/raw', 'dump.log').join(' ')).toBe('criu dump -t 42 -D /tmpfs/raw -o dump.log');
    expect(criu.baselineRestoreCommand('/tmpfs/raw', 'restore.log').join(' ')).toBe('criu restore -d -D /tmpfs/raw -o restore.log');
    expect(new CriuCli('/opt/criu').baselineDumpCommand(1, 'd', 'l')[0]).toBe('/opt/criu');
  });
});
