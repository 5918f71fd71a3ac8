import { describe, expect, it } from 'vitest';
import { experimentEnv } from './experiment-env.ts';

describe('experimentEnv', () => {
  it('gives the settings of a JSON object of strings, and none when unset', () => {
    expect(experimentEnv('{"SPOTSNAP_PACKS_IN_FLIGHT":"8"}')).toEqual({ SPOTSNAP_PACKS_IN_FLIGHT: '8' });
    expect(experimentEnv(undefined)).toEqual({});
    expect(experimentEnv('')).toEqual({});
  });

  it('names the bad value and what to give instead', () => {
    expect(() => experimentEnv('SPOTSNAP_PACKS_IN_FLIGHT=8')).toThrow(/BENCH_EXPERIMENT_ENV="SPOTSNAP_PACKS_IN_FLIGHT=8" is not JSON: give an object/);
    expect(() => experimentEnv('{"SPOTSNAP_PACKS_IN_FLIGHT":8}')).toThrow(/is not an object of string values/);
    expect(() => experimentEnv('["a"]')).toThrow(/is not an object of string values/);
  });
});
