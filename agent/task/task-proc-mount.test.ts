// Unit tests of the task's own /proc: mountinfo parsing, mask mirroring, the init prelude and CRIU's mount flags.
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileBindMountpoints, parseMountInfo, procMasks } from './mount-info.ts';
import { namespaceInitScript, parseInitStatus, procPrelude, unshareArgs } from './task-proc-mount.ts';

/** A Docker container's mountinfo (`--cap-add ALL`, not privileged), as read in the task image. */
const CONTAINER_MOUNTINFO = `213 143 0:52 / / rw,relatime master:5 - overlay overlay rw,lowerdir=/l/A:/l/B,upperdir=/u,workdir=/w
214 213 0:73 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
215 213 0:74 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
216 215 0:75 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
217 213 0:22 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs rw
219 217 0:29 /docker/ea22 /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
230 213 254:0 /var/lib/docker/containers/ea22/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw
232 213 254:0 /var/lib/docker/containers/ea22/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw
233 213 254:0 /srv/my\\040data /data rw,relatime - ext4 /dev/vda rw
144 214 0:73 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
147 214 0:73 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
148 214 0:78 / /proc/acpi ro,relatime - tmpfs tmpfs ro
149 214 0:74 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
`;

describe('parseMountInfo', () => {
  it('reads every field and unescapes paths', () => {
    const mounts = parseMountInfo(CONTAINER_MOUNTINFO);
    expect(mounts).toHaveLength(13);
    expect(mounts[0]).toMatchObject({ id: 213, parentId: 143, majorMinor: '0:52', root: '/', mountPoint: '/', fsType: 'overlay' });
    expect(mounts.find((m) => m.mountPoint === '/data')?.root).toBe('/srv/my data');
    expect(mounts.find((m) => m.mountPoint === '/proc/keys')).toMatchObject({ root: '/null', fsType: 'tmpfs', mountOptions: ['rw', 'nosuid'] });
  });

  it('names a line it cannot read', () => {
    expect(() => parseMountInfo('12 1 0:3 / /x rw\n')).toThrow(/unreadable mountinfo line: "12 1 0:3/);
  });
});

describe('procMasks', () => {
  it('mirrors the runtime read-only parts, masked files and masked directories of /proc', () => {
    expect(procMasks(parseMountInfo(CONTAINER_MOUNTINFO))).toEqual([
      { kind: 'readonly', path: '/proc/bus', options: ['ro', 'nosuid', 'nodev', 'noexec'] },
      { kind: 'readonly', path: '/proc/sys', options: ['ro', 'nosuid', 'nodev', 'noexec'] },
      { kind: 'tmpfs', path: '/proc/acpi', readOnly: true },
      { kind: 'file', path: '/proc/keys', source: '/dev/null', readOnly: false },
    ]);
  });

  it('has nothing to mirror without a /proc', () => {
    expect(procMasks(parseMountInfo('1 0 0:1 / / rw - ext4 /dev/vda rw\n'))).toEqual([]);
  });
});

describe('fileBindMountpoints', () => {
  it('lists the container mounts that are files, outside /proc', () => {
    const files = new Set(['/etc/resolv.conf', '/etc/hosts', '/proc/keys']);
    expect(fileBindMountpoints(parseMountInfo(CONTAINER_MOUNTINFO), (p) => !files.has(p))).toEqual(['/etc/resolv.conf', '/etc/hosts']);
  });
});

describe('unshareArgs', () => {
  it('makes a private mount namespace, with unshare mounting proc itself when there is no prelude', () => {
    expect(unshareArgs('/b/setsid', 'S', ['cmd', 'a'], true)).toEqual([
      '--pid',
      '--fork',
      '--ipc',
      '--mount',
      '--propagation',
      'private',
      '/b/setsid',
      '/bin/sh',
      '-c',
      'S',
      'spotsnap-task',
      'cmd',
      'a',
    ]);
    expect(unshareArgs('/b/setsid', 'S', ['cmd'], false).slice(0, 6)).toEqual(['--pid', '--fork', '--ipc', '--mount-proc', '--propagation', 'private']);
  });
});

describe('parseInitStatus', () => {
  it('reads the prelude outcome and the exit code, with or without the outcome', () => {
    expect(parseInitStatus('proc own\n7\n')).toEqual({ proc: 'own', code: 7 });
    expect(parseInitStatus('0\n')).toEqual({ code: 0 });
    expect(parseInitStatus('proc partial\n')).toEqual({ proc: 'partial' });
  });
});

/** Runs the init script under /bin/sh with stand-in mount and umount programs that log their arguments. */
async function runInit(failing: string): Promise<{ calls: string[]; status: string; out: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'proc-prelude-'));
  const log = path.join(dir, 'calls');
  for (const tool of ['mount', 'umount']) {
    const script = `#!/bin/sh\necho "${tool} $*" >> ${log}\ncase "${tool} $*" in ${failing || 'never-matches'}) exit 32;; esac\n`;
    await writeFile(path.join(dir, tool), script);
    await chmod(path.join(dir, tool), 0o755);
  }
  const masks = procMasks(parseMountInfo(CONTAINER_MOUNTINFO));
  const prelude = procPrelude(
    { mount: path.join(dir, 'mount'), umount: path.join(dir, 'umount'), stagingDir: '/stage' },
    ['rw', 'nosuid', 'nodev', 'noexec'],
    masks,
  );
  const statusFile = path.join(dir, 'status');
  const out = execFileSync(
    '/bin/sh',
    ['-c', `exec 3>${statusFile}; ${namespaceInitScript(prelude).replace(/\n/g, '\n')}`, 'spotsnap-task', 'sh', '-c', 'echo ran; exit 3'],
    { encoding: 'utf8' },
  );
  const calls = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n');
  return { calls, status: await readFile(statusFile, 'utf8'), out };
}

describe('procPrelude', () => {
  it('stages a new proc, moves it over the detached container /proc, then mirrors the masks', async () => {
    const { calls, status, out } = await runInit('');
    expect(calls).toEqual([
      'mount -t proc -o nosuid,nodev,noexec proc /stage',
      'mount --bind /proc/acpi /stage/acpi',
      'mount -o remount,bind,ro /stage/acpi',
      'umount -l /proc',
      'mount --move /stage /proc',
      'mount --bind /proc/bus /proc/bus',
      'mount -o remount,bind,ro,nosuid,nodev,noexec /proc/bus',
      'mount --bind /proc/sys /proc/sys',
      'mount -o remount,bind,ro,nosuid,nodev,noexec /proc/sys',
      'mount --bind /dev/null /proc/keys',
    ]);
    expect(out).toBe('ran\n');
    expect(parseInitStatus(status)).toEqual({ proc: 'own', code: 3 });
  });

  it('leaves the container /proc in place and still runs the command when proc cannot be mounted', async () => {
    const { calls, status, out } = await runInit('"mount -t proc"*');
    expect(calls).toEqual(['mount -t proc -o nosuid,nodev,noexec proc /stage']);
    expect(out).toBe('ran\n');
    expect(parseInitStatus(status)).toEqual({ proc: 'container', code: 3 });
  });

  it('reports a mask it could not apply and goes on', async () => {
    const { status, out } = await runInit('"mount --bind /dev/null"*');
    expect(out).toBe('ran\n');
    expect(parseInitStatus(status)).toEqual({ proc: 'partial', code: 3 });
  });
});
