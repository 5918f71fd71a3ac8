import { describe, expect, it } from 'vitest';
import { dumpArgs, restoreArgs, type CriuCommonOptions } from './criu-options.ts';

const common: CriuCommonOptions = { imagesDir: '/img', logFile: 'dump.log', logLevel: 4, tcpMode: 'established', fileLocks: true, extraArgs: [] };

describe('dumpArgs', () => {
  it('dumps the tree, keeps it stopped and logs verbosely', () => {
    expect(dumpArgs({ ...common, pid: 42, afterDump: 'stop' })).toEqual([
      'dump', '--tree', '42', '--images-dir', '/img', '--log-file', 'dump.log', '-v4', '--link-remap', '--file-locks', '--tcp-established', '--leave-stopped',
    ]);
  });

  it('models each choice with its own flag', () => {
    expect(dumpArgs({ ...common, pid: 1, afterDump: 'kill', tcpMode: 'close', fileLocks: false })).toEqual([
      'dump', '--tree', '1', '--images-dir', '/img', '--log-file', 'dump.log', '-v4', '--link-remap', '--tcp-close',
    ]);
    expect(dumpArgs({ ...common, pid: 1, afterDump: 'run' })).toContain('--leave-running');
  });

  it('appends extra arguments last', () => {
    expect(dumpArgs({ ...common, pid: 1, afterDump: 'kill', extraArgs: ['--ext-unix-sk'] }).at(-1)).toBe('--ext-unix-sk');
  });
});

describe('restoreArgs', () => {
  it('re-attaches each inherited pipe and writes a pidfile', () => {
    const options = { ...common, logFile: 'restore.log', pidFile: '/run/r.pid', consumeImages: false, inheritFds: [{ fd: 3, key: 'pipe:[11]' }, { fd: 4, key: 'pipe:[12]' }] };
    expect(restoreArgs(options)).toEqual([
      'restore', '--images-dir', '/img', '--log-file', 'restore.log', '-v4', '--link-remap', '--file-locks', '--tcp-established',
      '--pidfile', '/run/r.pid', '--inherit-fd', 'fd[3]:pipe:[11]', '--inherit-fd', 'fd[4]:pipe:[12]',
    ]);
    expect(restoreArgs({ ...options, consumeImages: true })).toContain('--auto-dedup');
  });
});
