// Strict versus fail-open: how `spotsnap run` runs the task for each configuration and CRIU it finds.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { CriuVersion } from '../../criu-bridge/criu-cli.ts';
import { readConfig } from '../config/config.ts';
import { decideMode, type CriuVersionProbe } from './run-mode.ts';

const ENABLED = { SPOTSNAP_ENABLED: 'true', SPOTSNAP_S3_URI: 's3://bucket/prefix', SPOTSNAP_PATHS: '/work', SPOTSNAP_JOB_ID: 'job-1' };

function capturingLog(): { log: pino.Logger; lines: Array<{ level: number; event?: string; msg: string }> } {
  const lines: Array<{ level: number; event?: string; msg: string }> = [];
  return {
    lines,
    log: pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; event?: string; msg: string }) }),
  };
}

const criu =
  (version: CriuVersion): CriuVersionProbe =>
  async () =>
    version;
const noCriu: CriuVersionProbe = async (criuPath) => {
  throw new Error(`"${criuPath} --version" failed: is CRIU 4.x installed?`);
};
const mustNotProbe: CriuVersionProbe = async () => {
  throw new Error('CRIU must not be asked');
};

/** pino's number for the error level. */
const ERROR = 50;

describe('decideMode', () => {
  it('runs the task transparently when spotsnap is disabled, without asking CRIU', async () => {
    const { log, lines } = capturingLog();
    expect(await decideMode(readConfig({}, '/work'), log, mustNotProbe)).toEqual({
      kind: 'transparent',
      why: 'spotsnap is disabled (SPOTSNAP_ENABLED is not true)',
    });
    expect(lines).toEqual([]);
  });

  it('refuses an invalid configuration with 178 under SPOTSNAP_STRICT=true', async () => {
    const mode = await decideMode(
      readConfig({ ...ENABLED, SPOTSNAP_STRICT: 'true', SPOTSNAP_POLL_INTERVAL_MS: 'often' }, '/work'),
      capturingLog().log,
      mustNotProbe,
    );
    expect(mode).toMatchObject({ kind: 'refuse', exitCode: 178 });
    expect(mode.kind === 'refuse' && mode.why).toMatch(
      /^invalid configuration; SPOTSNAP_STRICT=true, so the task is not started:\n.*SPOTSNAP_POLL_INTERVAL_MS/s,
    );
  });

  it('runs the task without snapshots on an invalid configuration otherwise, saying why as an error', async () => {
    const { log, lines } = capturingLog();
    const mode = await decideMode(readConfig({ ...ENABLED, SPOTSNAP_POLL_INTERVAL_MS: 'often' }, '/work'), log, mustNotProbe);
    expect(mode).toEqual({ kind: 'transparent', why: 'invalid configuration' });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe(ERROR);
    expect(lines[0]!.msg).toMatch(/^invalid configuration; the task runs without snapshots:\n.*SPOTSNAP_POLL_INTERVAL_MS/s);
    expect(lines[0]!.event).toBe('config.invalid');
  });

  it('takes snapshots with CRIU 4.2 or newer (the page-server protocol it speaks)', async () => {
    const mode = await decideMode(readConfig(ENABLED, '/work'), capturingLog().log, criu({ text: '4.2.0', number: 40200 }));
    expect(mode).toMatchObject({ kind: 'snapshots', criuVersion: { text: '4.2.0', number: 40200 } });
  });

  for (const [what, probe, why] of [
    ['missing', noCriu, 'CRIU is not usable: "criu --version" failed: is CRIU 4.x installed?'],
    ['too old', criu({ text: '3.17.1', number: 31701 }), 'CRIU is not usable: CRIU 3.17.1 is too old: spotsnap needs CRIU 4.2 or newer'],
    [
      'of the older page-server protocol',
      criu({ text: '4.1.1', number: 40101 }),
      'CRIU is not usable: CRIU 4.1.1 is too old: spotsnap needs CRIU 4.2 or newer',
    ],
  ] as const) {
    it(`CRIU ${what}: refused with 178 under SPOTSNAP_STRICT=true`, async () => {
      const { log, lines } = capturingLog();
      const mode = await decideMode(readConfig({ ...ENABLED, SPOTSNAP_STRICT: 'true' }, '/work'), log, probe);
      expect(mode).toEqual({ kind: 'refuse', exitCode: 178, why: `${why}; SPOTSNAP_STRICT=true, so the task is not started` });
      expect(lines).toEqual([]);
    });

    it(`CRIU ${what}: the task runs without snapshots otherwise, saying why as an error`, async () => {
      const { log, lines } = capturingLog();
      const mode = await decideMode(readConfig(ENABLED, '/work'), log, probe);
      expect(mode).toEqual({ kind: 'transparent', why });
      expect(lines.map((l) => [l.level, l.event, l.msg])).toEqual([[ERROR, 'criu.unusable', `${why}; the task runs without snapshots`]]);
    });
  }
});
