import { describe, expect, it } from 'vitest';
import { CriuCli, CriuError, errorExcerpt, parseCriuVersion } from './criu-cli.ts';

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
