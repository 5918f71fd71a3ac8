import { describe, expect, it } from 'vitest';
import { harmlessCheckError, missingCapabilities } from './doctor-command.ts';

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
    expect(harmlessCheckError('Error (criu/util.c:1533): rlimit: Can\'t setup RLIMIT_NOFILE for self: Operation not permitted', false)).toBe(true);
    expect(harmlessCheckError('Error (criu/cr-check.c:160): sys/kernel/ns_last_pid sysctl is inaccessible: Read-only file system', true)).toBe(true);
    expect(harmlessCheckError('Error (criu/cr-check.c:160): sys/kernel/ns_last_pid sysctl is inaccessible: Read-only file system', false)).toBe(false);
    expect(harmlessCheckError('Error (criu/cr-check.c:1234): ptrace: Operation not permitted', true)).toBe(false);
  });
});
