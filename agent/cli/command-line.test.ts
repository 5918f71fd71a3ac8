// The command-line parser, verb by verb: help, unknown options, missing values, arguments, and `run`'s `--`.
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from './command-line.ts';
import { VERBS } from './verbs.ts';

const call = (...argv: string[]) => parseCommandLine(argv);
const refusal = (...argv: string[]) => {
  const line = parseCommandLine(argv);
  return line.kind === 'refused' ? line.message : `not refused: ${line.kind}`;
};

describe('parseCommandLine: every verb', () => {
  for (const verb of VERBS) {
    it(`${verb.name}: -h and --help give its help, before or after the verb, whatever else is there`, () => {
      for (const argv of [
        [verb.name, '--help'],
        [verb.name, '-h'],
        ['--help', verb.name],
        ['-h', verb.name],
        [verb.name, '--help', '--no-such-option'],
      ]) {
        const line = parseCommandLine(argv);
        expect(line.kind, argv.join(' ')).toBe('help');
        expect(line.kind === 'help' && line.text, argv.join(' ')).toMatch(new RegExp(`^usage: spotsnap ${verb.name}\\b`));
      }
    });

    it(`${verb.name}: refuses an unknown option by name, with its usage`, () => {
      for (const bad of ['--no-such-option', '-q', '--no-such-option=1']) {
        const line = parseCommandLine(verb.name === 'run' ? ['run', bad, 'true'] : [verb.name, bad]);
        expect(line).toEqual({
          kind: 'refused',
          message: `spotsnap ${verb.name}: unknown option '${bad.split('=')[0]}'`,
          usage: expect.stringMatching(new RegExp(`^usage: spotsnap ${verb.name}\\b`)),
        });
      }
    });

    for (const option of verb.options.filter((o) => o.type === 'string')) {
      it(`${verb.name}: refuses --${option.name} without its value, at the end or before another option`, () => {
        const message = `spotsnap ${verb.name}: option '--${option.name}' needs a value: --${option.name} ${option.value}`;
        const head = verb.positionals.filter((p) => p.required).map((p) => p.name.toLowerCase());
        expect(refusal(verb.name, ...head, `--${option.name}`)).toBe(message);
        expect(refusal(verb.name, ...head, `--${option.name}`, '--help-me')).toBe(message);
      });
    }

    for (const option of verb.options.filter((o) => o.type === 'boolean')) {
      it(`${verb.name}: refuses a value given to the switch --${option.name}`, () => {
        expect(refusal(verb.name, `--${option.name}=yes`)).toBe(`spotsnap ${verb.name}: option '--${option.name}' takes no value`);
      });
    }
  }
});

describe('parseCommandLine: the top level', () => {
  it('answers --help, help and --version, and refuses what is not a verb', () => {
    for (const argv of [['--help'], ['-h'], ['help']])
      expect(parseCommandLine(argv)).toMatchObject({ kind: 'help', text: expect.stringMatching(/^usage: spotsnap run/) });
    expect(call('--version')).toEqual({ kind: 'version' });
    expect(call('version')).toEqual({ kind: 'version' });
    expect(refusal()).toBe('spotsnap: no verb given');
    expect(refusal('bogus')).toBe('spotsnap: unknown verb "bogus"');
    expect(refusal('--bogus', 'ls')).toBe("spotsnap: unknown option '--bogus'");
    expect(refusal('version', 'x')).toBe('spotsnap version: unexpected argument "x"');
    expect(call('help', 'prune')).toMatchObject({ kind: 'help', text: expect.stringMatching(/^usage: spotsnap prune /) });
    expect(refusal('help', 'nope')).toBe('spotsnap help: unknown verb "nope"');
  });
});

describe('parseCommandLine: run', () => {
  it("takes everything after -- or from the first argument that is not an option as the task's command", () => {
    expect(call('run', '--', 'python3', 'task.py', '--', 'x')).toEqual({ kind: 'call', call: { verb: 'run', command: ['python3', 'task.py', '--', 'x'] } });
    expect(call('run', 'sh', '-c', 'true')).toEqual({ kind: 'call', call: { verb: 'run', command: ['sh', '-c', 'true'] } });
    expect(call('run', '--', '--help')).toEqual({ kind: 'call', call: { verb: 'run', command: ['--help'] } });
    expect(call('run', 'cmd', '--help')).toEqual({ kind: 'call', call: { verb: 'run', command: ['cmd', '--help'] } });
    expect(call('run', 'cmd', '--bogus', '-h')).toEqual({ kind: 'call', call: { verb: 'run', command: ['cmd', '--bogus', '-h'] } });
    expect(call('run', '--', '--', 'x')).toEqual({ kind: 'call', call: { verb: 'run', command: ['--', 'x'] } });
  });

  it('refuses no command, an empty one, and an unknown option before the command', () => {
    expect(refusal('run')).toBe('spotsnap run: no command given: spotsnap run -- CMD [ARGS...]');
    expect(refusal('run', '--')).toBe('spotsnap run: no command given: spotsnap run -- CMD [ARGS...]');
    expect(refusal('run', '--', '')).toBe('spotsnap run: no command given: spotsnap run -- CMD [ARGS...]');
    expect(refusal('run', '--bogus', '--', 'true')).toBe("spotsnap run: unknown option '--bogus'");
  });
});

describe('parseCommandLine: the snapshot verbs', () => {
  it('doctor', () => {
    expect(call('doctor')).toEqual({ kind: 'call', call: { verb: 'doctor', options: { json: false } } });
    expect(call('doctor', '--json')).toEqual({ kind: 'call', call: { verb: 'doctor', options: { json: true } } });
    expect(refusal('doctor', 'now')).toBe('spotsnap doctor: unexpected argument "now"');
  });

  it('ls', () => {
    expect(call('ls', '--job', 'j1', '--s3=s3://b/p', '--json')).toEqual({
      kind: 'call',
      call: { verb: 'ls', options: { s3: 's3://b/p', job: 'j1', json: true } },
    });
    expect(call('ls')).toEqual({ kind: 'call', call: { verb: 'ls', options: { s3: undefined, job: undefined, json: false } } });
    expect(refusal('ls', 'j1')).toBe('spotsnap ls: unexpected argument "j1"');
  });

  it('inspect', () => {
    expect(call('inspect', 'j1', '--json')).toEqual({
      kind: 'call',
      call: { verb: 'inspect', options: { jobId: 'j1', snapshotId: undefined, s3: undefined, json: true } },
    });
    expect(call('inspect', '--s3', 's3://b/p', 'j1', 's1')).toEqual({
      kind: 'call',
      call: { verb: 'inspect', options: { jobId: 'j1', snapshotId: 's1', s3: 's3://b/p', json: false } },
    });
    expect(refusal('inspect')).toBe('spotsnap inspect: missing JOB');
    expect(refusal('inspect', 'j1', 's1', 'x')).toBe('spotsnap inspect: unexpected argument "x"');
  });

  it('prune', () => {
    expect(call('prune', '--older-than', '2d', '--dry-run')).toEqual({
      kind: 'call',
      call: { verb: 'prune', options: { s3: undefined, olderThan: '2d', dryRun: true } },
    });
    expect(call('prune')).toEqual({ kind: 'call', call: { verb: 'prune', options: { s3: undefined, olderThan: undefined, dryRun: false } } });
  });

  it('report takes the prefix as an argument or with --s3, not both', () => {
    expect(call('report', 's3://b/p', '--svg', 'chart.svg')).toEqual({
      kind: 'call',
      call: { verb: 'report', options: { s3: 's3://b/p', json: false, svg: 'chart.svg' } },
    });
    expect(call('report', '--s3', 's3://b/p', '--json')).toEqual({
      kind: 'call',
      call: { verb: 'report', options: { s3: 's3://b/p', json: true, svg: undefined } },
    });
    expect(refusal('report', 's3://b/p', '--s3', 's3://c/d')).toBe('spotsnap report: give the prefix once: as an argument or with --s3, not both');
  });
});
