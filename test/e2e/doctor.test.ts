// End to end: `spotsnap doctor` in a container that can checkpoint, and in one that cannot.
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { jobEnv } from '../support/job-env.ts';
import { runToCompletion, TASK_IMAGE } from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { s3Endpoint, bucket, imds } = useStandIns({ bucket: 'e2e-doctor', imds: { requireTokens: true } });

describe('spotsnap doctor', () => {
  it('passes where a checkpoint can work, saying what it checked', async () => {
    const env = jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId: 'doctor', attempt: 1 });
    const result = await runToCompletion(['doctor'], env, 60_000, ['/opt/spotsnap/bin/spotsnap']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    for (const name of ['CRIU', 'criu check', 'capabilities', 'seccomp', 'PID namespace', 'instance metadata', 'S3 prefix', 'image space']) {
      expect(result.stdout).toMatch(new RegExp(`^ok\\s+${name}\\s`, 'm'));
    }
    expect(result.stdout).toMatch(/^warn\s+dirty memory tracking\s+not on this kernel/m);
    // The image's own bindings (/opt/spotsnap/lib/native) load into its bundled runtime.
    expect(result.stdout).toMatch(/^ok\s+chunk hashing\s+chunks named by BLAKE3 \(native\); pack CRC-32 native \(\/opt\/spotsnap\/lib\/native\/crc32\./m);
    expect(result.stdout).toMatch(
      /^ok\s+restore streaming\s+memory pages stream from S3 into criu restore --stream \(\/opt\/spotsnap\/bin\/spotsnap-image-relay\)/m,
    );
    expect(result.stdout).toMatch(/IMDSv2 tokens work/);
    // The test containers drop CAP_SYS_RESOURCE and run on overlayfs: both limits are said, neither stops a checkpoint.
    expect(result.stdout).toMatch(/^warn\s+other users\s+no CAP_SYS_RESOURCE: a task with processes under another user/m);
    expect(result.stdout).toMatch(/^warn\s+file watches\s+the root filesystem is overlayfs/m);
    expect(result.stdout.trim().split('\n').at(-1)).toBe('a checkpoint can work here');
  });

  it('fails in a default container and says what to add', async () => {
    const env = jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId: 'doctor', attempt: 1 });
    const args = [
      'run',
      '--rm',
      '--network',
      'host',
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      '--entrypoint',
      '/opt/spotsnap/bin/spotsnap',
      TASK_IMAGE,
      'doctor',
    ];
    const result = await execa('docker', args, { reject: false });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/^FAIL\s+capabilities\s+missing CAP_SYS_ADMIN .* -> run with --cap-add ALL/m);
    expect(result.stdout).toMatch(/^FAIL\s+seccomp\s+seccomp mode 2: .* -> run with --security-opt seccomp=unconfined/m);
    expect(result.stdout).toMatch(/^ok\s+S3 prefix/m);
    expect(result.stdout.trim().split('\n').at(-1)).toMatch(/check\(s\) failed: a checkpoint cannot work here yet$/);
  });
});
