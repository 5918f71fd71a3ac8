import { describe, expect, it } from 'vitest';
import { chunkHashingCheck, doctorReport, harmlessCheckError, missingCapabilities, tcpCheck } from './doctor-command.ts';

describe('missingCapabilities', () => {
  it('finds none in a full set and names what a default container lacks', () => {
    expect(missingCapabilities('000001ffffffffff')).toEqual([]);
    // Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    const names = missingCapabilities('00000000a80425fb').map((c) => c.name);
    expect(names).toEqual(['CAP_SYS_ADMIN', 'CAP_SYS_PTRACE', 'CAP_NET_ADMIN']);
  });
});

describe('harmlessCheckError', () => {
  it('excuses only what does not stop a checkpoint', () => {
    expect(harmlessCheckError("Error (criu/util.c:1533): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted", false)).toBe(true);
    expect(harmlessCheckError('Error (criu/cr-check.c:160): sys/kernel/ns_last_pid sysctl is inaccessible: Read-only file system', true)).toBe(true);
    expect(harmlessCheckError('Error (criu/cr-check.c:160): sys/kernel/ns_last_pid sysctl is inaccessible: Read-only file system', false)).toBe(false);
    expect(harmlessCheckError('Error (criu/cr-check.c:1234): ptrace: Operation not permitted', true)).toBe(false);
  });
});

describe('chunkHashingCheck', () => {
  it('is ok with BLAKE3, and warns without it, saying what that costs and what to fix', () => {
    expect(chunkHashingCheck(undefined, 'native (x)')).toEqual({ status: 'ok', detail: 'chunks named by BLAKE3 (native); pack CRC-32 native (x)' });
    const missing = chunkHashingCheck('/opt/spotsnap/lib/native/blake.linux-x64-gnu.node: cannot open shared object file', 'zlib');
    expect(missing.status).toBe('warn');
    expect(missing.detail).toContain('blake.linux-x64-gnu.node: cannot open shared object file');
    expect(missing.detail).toContain('cannot restore a snapshot whose chunks are named by BLAKE3');
    expect(missing.fix).toContain('/opt/spotsnap/lib/native');
  });
});

describe('tcpCheck', () => {
  const criu41 = { text: '4.1.1', number: 40101 };
  const criu42 = { text: '4.2.1', number: 40201 };
  it('fails for CRIU before 4.2 only on kernels that refuse SO_PASSCRED on TCP and UDP sockets (6.16 and later)', () => {
    expect(tcpCheck(criu41, '6.18.0-1-cloud-amd64', 'close', undefined)).toMatchObject({ status: 'fail', fix: expect.stringMatching(/CRIU 4\.2 or newer/) });
    expect(tcpCheck(criu41, '7.0.1', 'close', undefined).status).toBe('fail');
    expect(tcpCheck(criu41, '6.12.40-63.114.amzn2023.x86_64', 'close', undefined).status).toBe('ok');
    expect(tcpCheck(criu42, '6.18.0', 'close', undefined).status).toBe('ok');
  });

  it("warns in 'established' mode, where a task holding a connection is not checkpointed, and names the lock tool", () => {
    expect(tcpCheck(criu42, '6.18.0', 'established', undefined)).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(/iptables-restore is not installed$/),
      fix: expect.stringMatching(/SPOTSNAP_TCP_MODE=close/),
    });
    expect(tcpCheck(criu42, '6.18.0', 'established', '/usr/sbin/iptables-restore').detail).toMatch(/at \/usr\/sbin\/iptables-restore$/);
  });
});

describe('doctorReport (spotsnap doctor --json)', () => {
  it('has every check with its fix (null when none) and the worst status as the verdict', () => {
    const ok = { name: 'CRIU', status: 'ok' as const, detail: 'criu 4.2.1' };
    const warn = { name: 'dirty memory tracking', status: 'warn' as const, detail: 'not on this kernel' };
    const fail = { name: 'seccomp', status: 'fail' as const, detail: 'seccomp mode 2', fix: 'run with --security-opt seccomp=unconfined' };
    expect(doctorReport([ok, fail, warn])).toEqual({
      verdict: 'fail',
      canCheckpoint: false,
      summary: '1 check(s) failed: a checkpoint cannot work here yet',
      checks: [
        { name: 'CRIU', status: 'ok', detail: 'criu 4.2.1', fix: null },
        { name: 'seccomp', status: 'fail', detail: 'seccomp mode 2', fix: 'run with --security-opt seccomp=unconfined' },
        { name: 'dirty memory tracking', status: 'warn', detail: 'not on this kernel', fix: null },
      ],
    });
    expect(doctorReport([ok, warn])).toMatchObject({ verdict: 'warn', canCheckpoint: true, summary: 'a checkpoint can work here' });
    expect(doctorReport([ok])).toMatchObject({ verdict: 'ok', canCheckpoint: true });
    // One JSON document, as printed.
    expect(JSON.parse(JSON.stringify(doctorReport([ok, warn]), null, 2))).toEqual(doctorReport([ok, warn]));
  });
});
