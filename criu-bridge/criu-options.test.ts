import { describe, expect, it } from 'vitest';
import { dumpArgs, dumpTcpArgs, restoreArgs, type CriuCommonOptions } from './criu-options.ts';

const common: CriuCommonOptions = {
  imagesDir: '/img',
  logFile: 'dump.log',
  logLevel: 4,
  tcpMode: 'established',
  fileLocks: true,
  extraArgs: [],
  externalFileMounts: [],
};

describe('dumpArgs', () => {
  it('dumps the tree, keeps it stopped and logs verbosely', () => {
    expect(dumpArgs({ ...common, pid: 42, afterDump: 'stop', tcpMode: 'close' })).toEqual([
      'dump',
      '--tree',
      '42',
      '--images-dir',
      '/img',
      '--log-file',
      'dump.log',
      '-v4',
      '--link-remap',
      '--file-locks',
      '--ext-mount-map',
      'auto',
      '--tcp-close',
      '--leave-stopped',
    ]);
  });

  it('models each choice with its own flag', () => {
    expect(dumpArgs({ ...common, pid: 1, afterDump: 'kill', tcpMode: 'close', fileLocks: false })).toEqual([
      'dump',
      '--tree',
      '1',
      '--images-dir',
      '/img',
      '--log-file',
      'dump.log',
      '-v4',
      '--link-remap',
      '--ext-mount-map',
      'auto',
      '--tcp-close',
    ]);
    expect(dumpArgs({ ...common, pid: 1, afterDump: 'run' })).toContain('--leave-running');
    expect(dumpArgs({ ...common, pid: 1, afterDump: 'stop', irmapScanPaths: ['/work', '/tmp'] }).join(' ')).toContain(
      '--irmap-scan-path /work --irmap-scan-path /tmp',
    );
    const ghost = dumpArgs({ ...common, pid: 1, afterDump: 'stop', ghostLimitBytes: 1024 ** 4 });
    expect(ghost.slice(ghost.indexOf('--ghost-limit'), ghost.indexOf('--ghost-limit') + 2)).toEqual(['--ghost-limit', '1099511627776']);
  });

  it('appends extra arguments last', () => {
    expect(dumpArgs({ ...common, pid: 1, afterDump: 'kill', extraArgs: ['--ext-unix-sk'] }).at(-1)).toBe('--ext-unix-sk');
  });
});

describe('dumpTcpArgs', () => {
  it("in 'close' mode never puts a connection into repair mode, whatever becomes of the tree", () => {
    for (const afterDump of ['kill', 'stop', 'run'] as const) expect(dumpTcpArgs({ tcpMode: 'close', afterDump })).toEqual(['--tcp-close']);
  });

  it("in 'established' mode dumps connection state only where CRIU ends the tree or unlocks its connections itself", () => {
    expect(dumpTcpArgs({ tcpMode: 'established', afterDump: 'kill' })).toEqual(['--tcp-established']);
    expect(dumpTcpArgs({ tcpMode: 'established', afterDump: 'run' })).toEqual(['--tcp-established']);
    // A stopped tree may be continued: CRIU must refuse its established connections rather than leave them in repair mode.
    expect(dumpTcpArgs({ tcpMode: 'established', afterDump: 'stop' })).toEqual([]);
    expect(dumpArgs({ ...common, pid: 7, afterDump: 'stop' })).not.toContain('--tcp-established');
  });
});

describe("the task's mount namespace", () => {
  it('names each file mount of the container as external, at dump and at restore', () => {
    const files = { ...common, externalFileMounts: ['/etc/hosts', '/etc/resolv.conf'] };
    for (const args of [dumpArgs({ ...files, pid: 1, afterDump: 'stop' }), restoreArgs({ ...files, pidFile: '/p', consumeImages: false, inheritFds: [] })]) {
      expect(args.join(' ')).toContain('--ext-mount-map auto --external mnt[/etc/hosts]:/etc/hosts --external mnt[/etc/resolv.conf]:/etc/resolv.conf');
    }
  });
});

describe('restoreArgs', () => {
  it('re-attaches each inherited pipe and writes a pidfile', () => {
    const options = {
      ...common,
      logFile: 'restore.log',
      pidFile: '/run/r.pid',
      consumeImages: false,
      inheritFds: [
        { fd: 3, key: 'pipe:[11]' },
        { fd: 4, key: 'pipe:[12]' },
      ],
    };
    expect(restoreArgs(options)).toEqual([
      'restore',
      '--images-dir',
      '/img',
      '--log-file',
      'restore.log',
      '-v4',
      '--link-remap',
      '--file-locks',
      '--ext-mount-map',
      'auto',
      '--root',
      '/',
      '--tcp-established',
      '--pidfile',
      '/run/r.pid',
      '--inherit-fd',
      'fd[3]:pipe:[11]',
      '--inherit-fd',
      'fd[4]:pipe:[12]',
    ]);
    expect(restoreArgs({ ...options, consumeImages: true })).toContain('--auto-dedup');
  });
});
