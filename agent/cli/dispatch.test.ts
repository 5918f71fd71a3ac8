// main(): help, version and a refused command line run nothing; each verb is called with what its command line says; exit codes.
import { describe, expect, it, vi } from 'vitest';
import { UsageError } from './command-args.ts';
import { main, type VerbHandlers } from './dispatch.ts';
import { VERBS } from './verbs.ts';

function harness(overrides: Partial<VerbHandlers> = {}) {
  const verbs: VerbHandlers = {
    run: vi.fn(async () => 0),
    doctor: vi.fn(async () => 0),
    ls: vi.fn(async () => 0),
    inspect: vi.fn(async () => 0),
    prune: vi.fn(async () => 0),
    report: vi.fn(async () => 0),
    ...overrides,
  };
  const io = { stdout: '', stderr: '' };
  const streams = {
    stdout: (t: string) => {
      io.stdout += t;
    },
    stderr: (t: string) => {
      io.stderr += t;
    },
  };
  const run = (...argv: string[]) => main(argv, verbs, streams);
  const called = () => Object.values(verbs).filter((f) => vi.mocked(f).mock.calls.length > 0).length;
  return { verbs, io, run, called };
}

describe('main', () => {
  for (const verb of VERBS) {
    it(`${verb.name} --help prints its help on stdout, exits 0 and runs nothing`, async () => {
      const h = harness();
      expect(await h.run(verb.name, '--help')).toBe(0);
      expect(h.io.stdout).toMatch(new RegExp(`^usage: spotsnap ${verb.name}\\b[^]*\\noptions:\\n[^]*\\nexit codes:\\n`));
      expect(h.io.stderr).toBe('');
      expect(h.called()).toBe(0);
    });
  }

  it('prints the version, and the overview, running nothing', async () => {
    const h = harness();
    expect(await h.run('--version')).toBe(0);
    expect(await h.run('version')).toBe(0);
    expect(h.io.stdout).toBe('spotsnap 0.1.0\nspotsnap 0.1.0\n');
    expect(await h.run('--help')).toBe(0);
    expect(h.io.stdout).toMatch(/\nverbs:\n {2}run {6}Runs CMD/);
    expect(h.called()).toBe(0);
  });

  it('refuses an unknown option with its name and the usage on stderr, exit 64, running nothing', async () => {
    const h = harness();
    expect(await h.run('ls', '--bogus', 'x')).toBe(64);
    expect(h.io.stderr).toBe(
      "spotsnap ls: unknown option '--bogus'\nusage: spotsnap ls [--job ID] [--s3 s3://BUCKET/PREFIX] [--json]\n(spotsnap ls --help says more)\n",
    );
    expect(await h.run('doctor', '--jsn')).toBe(64);
    expect(await h.run('run', '--bogus', 'true')).toBe(64);
    expect(await h.run('run')).toBe(64);
    expect(h.io.stdout).toBe('');
    expect(h.called()).toBe(0);
  });

  it("hands run the task's command, --help included, and passes its code on", async () => {
    const h = harness({ run: vi.fn(async () => 127) });
    expect(await h.run('run', '--', '--help')).toBe(127);
    expect(await h.run('run', 'python3', 'task.py', '--help')).toBe(127);
    expect(vi.mocked(h.verbs.run).mock.calls).toEqual([[['--help']], [['python3', 'task.py', '--help']]]);
  });

  it('calls the verb with its options, and prints its lines on stdout', async () => {
    const h = harness({
      doctor: vi.fn(async (_options, out) => {
        out('{}');
        return 1;
      }),
    });
    expect(await h.run('doctor', '--json')).toBe(1);
    expect(vi.mocked(h.verbs.doctor).mock.calls[0]![0]).toEqual({ json: true });
    expect(h.io.stdout).toBe('{}\n');
  });

  it('exits 1 on an operational failure and 64 on a usage mistake found by the verb, naming the verb', async () => {
    const h = harness({
      inspect: vi.fn(async () => {
        throw new Error('no committed snapshot for job "no-such-job" (snapshots: none)');
      }),
      ls: vi.fn(async () => {
        throw new UsageError('no S3 prefix: pass --s3 s3://BUCKET/PREFIX or set SPOTSNAP_S3_URI');
      }),
    });
    expect(await h.run('inspect', 'no-such-job')).toBe(1);
    expect(h.io.stderr).toBe('spotsnap inspect: no committed snapshot for job "no-such-job" (snapshots: none)\n');
    h.io.stderr = '';
    expect(await h.run('ls')).toBe(64);
    expect(h.io.stderr).toMatch(/^spotsnap ls: no S3 prefix: pass --s3 s3:\/\/BUCKET\/PREFIX or set SPOTSNAP_S3_URI\nusage: spotsnap ls /);
  });
});
