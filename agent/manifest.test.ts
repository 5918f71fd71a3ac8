import { describe, expect, it } from 'vitest';
import { sampleManifest } from '../test/support/sample-manifest.ts';
import { ManifestError, parseManifest } from './manifest.ts';

function mutated(change: (m: Record<string, unknown>) => void): string {
  const m = JSON.parse(JSON.stringify(sampleManifest())) as Record<string, unknown>;
  change(m);
  return JSON.stringify(m);
}

describe('parseManifest', () => {
  it('reads back what was written', () => {
    const manifest = sampleManifest();
    expect(parseManifest(JSON.stringify(manifest))).toEqual(manifest);
    expect(parseManifest(JSON.stringify(sampleManifest({ notice: null }))).notice).toBeNull();
  });

  it('refuses a newer schema version with what to do', () => {
    expect(() => parseManifest(mutated((m) => (m.schemaVersion = 2)))).toThrow(
      /schema version 2 is not supported \(this agent reads version 1\); it was written by a newer spotsnap: upgrade the agent/,
    );
  });

  it.each<[string, (m: Record<string, unknown>) => void, RegExp]>([
    ['not JSON', () => undefined, /not JSON/],
    ['another kind', (m) => (m.kind = 'other'), /kind is "other"/],
    ['a fractional version', (m) => (m.schemaVersion = 1.5), /schemaVersion 1.5 is not a whole number/],
    ['no objects', (m) => (m.objects = []), /lists no "images" object/],
    ['a bad digest', (m) => ((m.objects as Array<Record<string, unknown>>)[0]!.sha256 = 'xyz'), /objects\[0\]\.sha256/],
    ['negative bytes', (m) => ((m.objects as Array<Record<string, unknown>>)[1]!.bytes = -1), /objects\[1\]\.bytes/],
    ['an unknown object', (m) => ((m.objects as Array<Record<string, unknown>>)[2]!.name = 'secrets'), /objects\[2\]\.name "secrets" is unknown/],
    ['a relative path', (m) => (m.paths = ['work']), /paths\[0\]/],
    ['a pipe that is not a pipe', (m) => (((m.task as Record<string, Record<string, unknown>>).pipes!).stdout = '/dev/tty'), /task\.pipes\.stdout/],
    ['a missing job id', (m) => delete m.jobId, /jobId is not a non-empty string/],
  ])('refuses a manifest with %s', (_what, change, message) => {
    const text = _what === 'not JSON' ? '{"kind":' : mutated(change);
    expect(() => parseManifest(text)).toThrow(ManifestError);
    expect(() => parseManifest(text)).toThrow(message);
  });
});
