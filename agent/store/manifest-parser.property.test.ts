import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sampleManifest } from '../../test/support/sample-manifest.ts';
import { MANIFEST_SCHEMA_VERSION } from './manifest.ts';
import { ManifestError, parseManifest } from './manifest-parser.ts';

/** The parser's only allowed outcomes: a manifest, or a ManifestError. Anything else is a crash. */
function parsesOrRefuses(text: string): void {
  try {
    const manifest = parseManifest(text);
    expect(manifest.schemaVersion).toBe(MANIFEST_SCHEMA_VERSION);
    expect(manifest.images.length).toBeGreaterThan(0);
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError);
  }
}

const valid = JSON.stringify(sampleManifest());

describe('parseManifest on random and mutated input', () => {
  it('never crashes on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 4 }), (text) => parsesOrRefuses(text)),
      { numRuns: 2000, seed: 21 },
    );
  });

  it('never crashes on a valid manifest with one field replaced or removed', () => {
    const paths: string[][] = [];
    const walk = (value: unknown, at: string[]): void => {
      if (value && typeof value === 'object') {
        for (const [key, child] of Object.entries(value)) {
          paths.push([...at, key]);
          walk(child, [...at, key]);
        }
      }
    };
    walk(JSON.parse(valid), []);
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.option(fc.anything(), { nil: undefined }), (at, replacement) => {
        const m = JSON.parse(valid) as Record<string, unknown>;
        let parent = m as Record<string, unknown>;
        for (const key of at.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
        if (replacement === undefined) delete parent[at.at(-1)!];
        else parent[at.at(-1)!] = replacement;
        parsesOrRefuses(JSON.stringify(m) ?? 'null');
      }),
      { numRuns: 3000, seed: 22 },
    );
  });

  it('never crashes on a manifest text with bytes changed, cut or inserted', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: valid.length - 1 }), fc.integer({ min: 0, max: 40 }), fc.string({ maxLength: 8 }), (at, cut, insert) => {
        parsesOrRefuses(valid.slice(0, at) + insert + valid.slice(at + cut));
      }),
      { numRuns: 3000, seed: 23 },
    );
  });
});
