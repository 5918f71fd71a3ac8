// The manifest parser: reads back what was written, reads the previous schema, and refuses anything else, naming the field.
import { describe, expect, it } from 'vitest';
import { sampleManifest } from '../../test/support/sample-manifest.ts';
import { ManifestError, parseManifest } from './manifest-parser.ts';

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

  it('refuses a newer schema version with what to do, and an older one', () => {
    expect(() => parseManifest(mutated((m) => (m.schemaVersion = 7)))).toThrow(
      /schema version 7 is not supported \(this agent reads versions 5 and 6\); it was written by a newer spotsnap: upgrade the agent/,
    );
    expect(() => parseManifest(mutated((m) => (m.schemaVersion = 4)))).toThrow(
      /schema version 4 is not supported \(this agent reads versions 5 and 6\); it is too old/,
    );
  });

  it('reads a version 5 manifest, whose chunks are named by bare SHA-256 hex, as chunks named sha256:hex', () => {
    const v5 = mutated((m) => {
      m.schemaVersion = 5;
      for (const chunk of (m.files as { chunks: Array<Record<string, unknown>> }).chunks) {
        chunk.sha256 = 'a'.repeat(64);
        delete chunk.digest;
      }
      for (const image of m.images as Array<{ chunks: Array<Record<string, unknown>> }>)
        for (const chunk of image.chunks) {
          chunk.sha256 = 'b'.repeat(64);
          delete chunk.digest;
        }
      for (const chunk of ((m.outside as Record<string, unknown>).files as { chunks: Array<Record<string, unknown>> }).chunks) {
        chunk.sha256 = 'c'.repeat(64);
        delete chunk.digest;
      }
    });
    const parsed = parseManifest(v5);
    expect(parsed.schemaVersion).toBe(6);
    expect(parsed.files.chunks.map((c) => c.digest)).toEqual([`sha256:${'a'.repeat(64)}`]);
    expect(parsed.images.flatMap((i) => i.chunks).every((c) => c.digest === `sha256:${'b'.repeat(64)}`)).toBe(true);
    expect(parsed.outside.files.chunks.map((c) => c.digest)).toEqual([`sha256:${'c'.repeat(64)}`]);
    // A version 5 chunk without its sha256 is refused, naming the field.
    expect(() => parseManifest(mutated((m) => (m.schemaVersion = 5)))).toThrow(/images\[0\]\.chunks\[0\]\.sha256/);
  });

  it.each<[string, (m: Record<string, unknown>) => void, RegExp]>([
    ['not JSON', () => undefined, /not JSON/],
    ['another kind', (m) => (m.kind = 'other'), /kind is "other"/],
    ['a fractional version', (m) => (m.schemaVersion = 1.5), /schemaVersion 1.5 is not a whole number/],
    ['no image files', (m) => (m.images = []), /lists no image files/],
    ['an image file listed twice', (m) => (m.images = [(m.images as unknown[])[0], (m.images as unknown[])[0]]), /image file twice/],
    ['an image name with a slash', (m) => ((m.images as Array<Record<string, unknown>>)[0]!.name = '../pages-1.img'), /images\[0\]\.name/],
    ['a bad chunk digest', (m) => ((m.files as { chunks: Array<Record<string, unknown>> }).chunks[0]!.digest = 'xyz'), /files\.chunks\[0\]\.digest/],
    [
      'a chunk too large to hold in memory',
      (m) => {
        const image = (m.images as Array<{ bytes: number; chunks: Array<{ bytes: number }> }>)[0]!;
        image.chunks[0]!.bytes = 65 << 20;
        image.bytes = image.chunks.reduce((s, c) => s + c.bytes, 0);
      },
      /images\[0\]\.chunks\[0\]\.bytes 68157440 is above the 67108864 bytes a chunk may have/,
    ],
    [
      'a chunk with no pack',
      (m) => delete (m.files as { chunks: Array<Record<string, unknown>> }).chunks[0]!.pack,
      /files\.chunks\[0\]\.pack undefined is not of the form/,
    ],
    [
      'a pack id that is a path',
      (m) => ((m.files as { chunks: Array<Record<string, unknown>> }).chunks[0]!.pack = '../x'),
      /files\.chunks\[0\]\.pack "\.\.\/x"/,
    ],
    ['chunks that do not add up', (m) => ((m.images as Array<Record<string, unknown>>)[0]!.bytes = 301), /chunks add up to 300 bytes, not 301/],
    ['a bad object digest', (m) => ((m.objects as Array<Record<string, unknown>>)[0]!.sha256 = 'xyz'), /objects\[0\]\.sha256/],
    ['an unknown object', (m) => ((m.objects as Array<Record<string, unknown>>)[0]!.name = 'secrets'), /objects\[0\]\.name "secrets" is unknown/],
    ['an unknown checkpoint kind', (m) => (m.checkpointKind = 'sometimes'), /checkpointKind "sometimes"/],
    ['a relative path', (m) => (m.paths = ['work']), /paths\[0\]/],
    ['a pipe that is not a pipe', (m) => ((m.task as Record<string, Record<string, unknown>>).pipes!.stdout = '/dev/tty'), /task\.pipes\.stdout/],
    ['a missing job id', (m) => delete m.jobId, /jobId is not a non-empty string/],
  ])('refuses a manifest with %s', (_what, change, message) => {
    const text = _what === 'not JSON' ? '{"kind":' : mutated(change);
    expect(() => parseManifest(text)).toThrow(ManifestError);
    expect(() => parseManifest(text)).toThrow(message);
  });
});
