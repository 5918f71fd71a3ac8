// Tests the table of environment variables: its defaults are values of their own form, and readConfig reads through it alone.
import { describe, expect, it } from 'vitest';
import { readConfig, type ConfigResult } from './config.ts';
import { ENV_VARS, EnvVar } from './env-vars.ts';
import { readVariable, settingOrDefault } from './read-env-var.ts';

const base = { SPOTSNAP_ENABLED: 'true', SPOTSNAP_S3_URI: 's3://my-bucket/spot', AWS_BATCH_JOB_ID: 'job-1' };
const specs = Object.values(ENV_VARS);
const names = new Set(specs.map((s) => s.name));
const BAD = 'not valid!';

function problemsOf(env: Record<string, string>) {
  const result: ConfigResult = readConfig(env, '/work');
  return result.kind === 'invalid' ? result.problems : [];
}

describe('ENV_VARS', () => {
  it('names each variable once, and EnvVar by the same keys', () => {
    expect(names.size).toBe(specs.length);
    expect(Object.entries(EnvVar)).toEqual(Object.entries(ENV_VARS).map(([key, spec]) => [key, spec.name]));
  });

  it('documents each default that is a value as text its parser reads to that very value', () => {
    const literals = specs.filter((s) => /^`[^`]+`$/.test(s.defaultText) && !names.has(s.defaultText.slice(1, -1)));
    expect(literals.map((s) => s.name)).toContain('SPOTSNAP_WORK_DIR');
    for (const spec of literals) {
      expect(spec.defaultValue, spec.name).not.toBeUndefined();
      expect(spec.parse(spec.defaultText.slice(1, -1)), spec.name).toEqual(spec.defaultValue);
    }
  });

  it('gives every variable an expected form and a description', () => {
    for (const spec of specs) {
      expect(spec.expected, spec.name).not.toBe('');
      expect(spec.description, spec.name).toMatch(/\.$/);
    }
  });

  it("is where readConfig's defaults come from", () => {
    const result = readConfig(base, '/work');
    if (result.kind !== 'enabled') throw new Error(`expected an enabled config, got ${JSON.stringify(result)}`);
    expect(result.config).toMatchObject({
      workDir: ENV_VARS.workDir.defaultValue,
      imdsEndpoint: ENV_VARS.imdsEndpoint.defaultValue,
      criuPath: ENV_VARS.criuPath.defaultValue,
      pollIntervalMs: ENV_VARS.pollIntervalMs.defaultValue,
      tcpMode: ENV_VARS.tcpMode.defaultValue,
      checkpointInterval: ENV_VARS.checkpointInterval.defaultValue,
      prices: { s3PerGbMonth: ENV_VARS.s3PricePerGbMonth.defaultValue, s3Per1000Puts: ENV_VARS.s3PricePer1000Puts.defaultValue },
    });
  });

  it("names a bad value of each variable with the table's expected form", () => {
    const checked = specs.filter((s) => s.parse(BAD) === undefined);
    expect(checked.length).toBeGreaterThan(15);
    for (const spec of checked) {
      expect(problemsOf({ ...base, [spec.name]: BAD }), spec.name).toEqual([{ variable: spec.name, value: BAD, expected: spec.expected }]);
    }
    // Read with other settings in hand: the Batch job id is checked as the job id, the paths as absolute directories.
    for (const spec of [ENV_VARS.batchJobId, ENV_VARS.paths]) {
      expect(problemsOf({ ...base, [spec.name]: BAD }), spec.name).toEqual([{ variable: spec.name, value: BAD, expected: spec.expected }]);
    }
    const kms = ENV_VARS.sseKmsKeyId;
    expect(problemsOf({ ...base, [kms.name]: 'alias/k' })).toEqual([{ variable: kms.name, value: 'alias/k', expected: kms.expected }]);
  });

  it('is every variable readConfig reads', () => {
    const read = new Set<string>();
    const env = new Proxy<Record<string, string>>(
      { ...base, SPOTSNAP_SSE: 'aws:kms', AWS_BATCH_JOB_ARRAY_INDEX: '2' },
      {
        get: (target, key) => {
          if (typeof key === 'string') read.add(key);
          return Reflect.get(target, key);
        },
      },
    );
    expect(readConfig(env, '/work').kind).toBe('enabled');
    expect([...read].filter((name) => !names.has(name))).toEqual([]);
    expect([...names].filter((name) => !read.has(name))).toEqual([]);
  });
});

describe('readVariable and settingOrDefault', () => {
  const spec = ENV_VARS.workDir;
  const problems: string[] = [];
  const bad = (variable: string, expected: string) => void problems.push(`${variable}: ${expected}`);

  it('read a good value, the default for a blank one, and report a bad one', () => {
    expect(readVariable({ [spec.name]: ' /data/w ' }, spec, bad)).toBe('/data/w');
    expect(readVariable({ [spec.name]: '  ' }, spec, bad)).toBe('/var/lib/spotsnap');
    expect(problems).toEqual([]);
    expect(readVariable({ [spec.name]: 'rel' }, spec, bad)).toBeUndefined();
    expect(problems).toEqual(['SPOTSNAP_WORK_DIR: an absolute directory path']);
  });

  it('report a required variable that is unset', () => {
    problems.length = 0;
    expect(readVariable({}, ENV_VARS.s3Uri, bad)).toBeUndefined();
    expect(problems).toEqual([`SPOTSNAP_S3_URI: ${ENV_VARS.s3Uri.expected}`]);
  });

  it('take the default in place of a bad value where a whole configuration is not needed', () => {
    expect(settingOrDefault({ [spec.name]: '/data/w' }, spec)).toBe('/data/w');
    expect(settingOrDefault({ [spec.name]: 'rel' }, spec)).toBe('/var/lib/spotsnap');
    expect(settingOrDefault({}, ENV_VARS.tcpMode)).toBe('established');
    expect(settingOrDefault({ SPOTSNAP_TCP_MODE: 'CLOSE' }, ENV_VARS.tcpMode)).toBe('close');
  });
});
