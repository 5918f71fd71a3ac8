// End to end: the command line inside the task image: help runs nothing, run's command is the task's, refusals and exit codes, doctor --json.
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import type { DoctorReport } from '../../agent/cli/doctor-command.ts';
import { AGENT_VERSION } from '../../agent/shared/version.ts';
import { jobEnv } from '../support/job-env.ts';
import { runToCompletion, TASK_IMAGE } from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { bucket, imds, proxy } = useStandIns({ bucket: 'e2e-cli', proxy: true, imds: { requireTokens: true } });
const SPOTSNAP = ['/opt/spotsnap/bin/spotsnap'];

/** A job's environment with S3 behind the fault proxy, which records every request. */
const env = () => jobEnv({ s3Endpoint: proxy.url, imdsUrl: imds.url, bucket, jobId: 'cli', attempt: 1 });

/** Runs `spotsnap ARGS...` in the task image, with the options a checkpoint needs, and says whether S3 or the metadata service was asked anything. */
async function spotsnap(args: readonly string[], environment: Record<string, string> = env()) {
  const [s3Before, imdsBefore] = [proxy.requests.length, imds.requests.length];
  const result = await runToCompletion(args, environment, 60_000, SPOTSNAP);
  return { ...result, s3Requests: proxy.requests.length - s3Before, imdsRequests: imds.requests.length - imdsBefore };
}

describe('spotsnap run', () => {
  it('--help prints its usage, options, variables and exit codes, runs nothing and exits 0', async () => {
    const result = await spotsnap(['run', '--help']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^usage: spotsnap run \[--\] CMD \[ARGS\.\.\.\]\n/);
    expect(result.stdout).toMatch(/^options:\n {2}-h, --help /m);
    expect(result.stdout).toMatch(/^environment:\n {2}SPOTSNAP_ENABLED /m);
    expect(result.stdout).toMatch(/^exit codes:\n/m);
    expect(result.stdout).toMatch(/^ {2}178 +SPOTSNAP_STRICT=true/m);
    expect(result.stderr).toBe('');
    expect([result.s3Requests, result.imdsRequests]).toEqual([0, 0]);
  });

  it("takes everything after -- or after the command as the task's, --help included", async () => {
    const echoArgs = ['sh', '-c', 'echo "task got: $*"', 'sh', '--help', '-h'];
    const after = await spotsnap(['run', ...echoArgs]);
    expect(after.exitCode, after.stderr).toBe(0);
    expect(after.stdout).toBe('task got: --help -h\n');
    const dashed = await spotsnap(['run', '--', ...echoArgs], {});
    expect(dashed.stdout).toBe('task got: --help -h\n');
    // A command named --help is looked for, as a shell would, and not found.
    const named = await spotsnap(['run', '--', '--help'], {});
    expect(named.exitCode).toBe(127);
    expect(named.stdout).toBe('');
  });

  it('refuses an unknown option before the command by name, with the usage, exit 64, and runs nothing', async () => {
    const result = await spotsnap(['run', '--bogus', 'sh', '-c', 'echo ran']);
    expect(result.exitCode).toBe(64);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe("spotsnap run: unknown option '--bogus'\nusage: spotsnap run [--] CMD [ARGS...]\n(spotsnap run --help says more)\n");
  });
});

describe('spotsnap doctor', () => {
  it('--help prints its usage, runs no check (no S3 probe, no metadata request) and exits 0', async () => {
    const result = await spotsnap(['doctor', '--help']);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^usage: spotsnap doctor \[--json\]\n/);
    expect(result.stdout).toMatch(/^ {2}--json +one JSON document/m);
    expect(result.stdout).not.toMatch(/^(ok|warn|FAIL) {2}/m);
    expect(result.stderr).toBe('');
    expect([result.s3Requests, result.imdsRequests]).toEqual([0, 0]);
  });

  it('--json prints one JSON document with every check and the verdict', async () => {
    const result = await spotsnap(['doctor', '--json']);
    expect(result.exitCode, result.stdout + result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as DoctorReport;
    // The test containers drop CAP_SYS_RESOURCE and run on overlayfs on a kernel without dirty tracking: warnings, no failure.
    expect(report).toMatchObject({ verdict: 'warn', canCheckpoint: true, summary: 'a checkpoint can work here' });
    const names = report.checks.map((c) => c.name);
    for (const name of ['configuration', 'CRIU', 'criu check', 'capabilities', 'seccomp', 'PID namespace', 'instance metadata', 'S3 prefix', 'image space']) {
      expect(
        report.checks.find((c) => c.name === name),
        `${name} in ${names.join(', ')}`,
      ).toMatchObject({ status: 'ok', fix: null });
    }
    for (const check of report.checks) {
      expect(Object.keys(check).sort()).toEqual(['detail', 'fix', 'name', 'status']);
      expect(['ok', 'warn', 'fail']).toContain(check.status);
      expect(check.detail).not.toBe('');
    }
    expect(report.checks.find((c) => c.name === 'other users')).toMatchObject({ status: 'warn', fix: expect.stringMatching(/CAP_SYS_RESOURCE/) });
    // It did check: the probe went to S3, and the metadata service was asked.
    expect(result.s3Requests).toBeGreaterThan(0);
    expect(result.imdsRequests).toBeGreaterThan(0);
  });

  it('--json in a default container: verdict fail, exit 1, each failure with its fix', async () => {
    const args = [
      'run',
      '--rm',
      '--network',
      'host',
      ...Object.entries(env()).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      '--entrypoint',
      SPOTSNAP[0]!,
      TASK_IMAGE,
      'doctor',
      '--json',
    ];
    const result = await execa('docker', args, { reject: false });
    expect(result.exitCode).toBe(1);
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(report).toMatchObject({ verdict: 'fail', canCheckpoint: false });
    expect(report.checks.find((c) => c.name === 'capabilities')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/--cap-add ALL/) });
    expect(report.checks.find((c) => c.name === 'seccomp')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/seccomp=unconfined/) });
  });
});

describe('the other verbs', () => {
  it('print the version, refuse an unknown option with 64 and a missing job with 1', async () => {
    const version = await spotsnap(['--version'], {});
    expect([version.exitCode, version.stdout]).toEqual([0, `spotsnap ${AGENT_VERSION}\n`]);
    const unknown = await spotsnap(['ls', '--bogus', 'x']);
    expect(unknown.exitCode).toBe(64);
    expect(unknown.stderr).toMatch(/^spotsnap ls: unknown option '--bogus'\nusage: spotsnap ls /);
    expect(unknown.s3Requests).toBe(0);
    const missing = await spotsnap(['inspect', 'no-such-job']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/^spotsnap inspect: no committed snapshot for job "no-such-job"/);
  });
});
