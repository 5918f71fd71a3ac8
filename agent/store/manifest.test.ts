// The manifest's own helpers: the command digest a restore compares, and the chunks a manifest names.
import { describe, expect, it } from 'vitest';
import { sampleManifest } from '../../test/support/sample-manifest.ts';
import { chunkRefs, commandDigest } from './manifest.ts';

describe('commandDigest', () => {
  it('is the SHA-256 of the argument list, so that where the arguments split counts', () => {
    expect(commandDigest(['python3', 'task.py'])).toMatch(/^[0-9a-f]{64}$/);
    expect(commandDigest(['python3', 'task.py'])).toBe(commandDigest(['python3', 'task.py']));
    expect(commandDigest(['python3 task.py'])).not.toBe(commandDigest(['python3', 'task.py']));
    expect(commandDigest(['python3', 'task.py', ''])).not.toBe(commandDigest(['python3', 'task.py']));
  });
});

describe('chunkRefs', () => {
  it('lists the chunks of the images, the files and the outside files, in that order', () => {
    expect(chunkRefs(sampleManifest()).map((c) => c.digest.split(':')[1]![0])).toEqual(['b', 'c', 'd', 'e', '9']);
  });
});
