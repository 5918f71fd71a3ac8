import fc from 'fast-check';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractArchive } from './tar-extract.ts';
import { packDirectories } from './tar-pack.ts';

let archive: Buffer;

beforeAll(async () => {
  const source = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-fuzz-src-'));
  await mkdir(path.join(source, 'dir/sub'), { recursive: true });
  await writeFile(path.join(source, 'dir/sub/data.bin'), Buffer.alloc(5000, 1));
  await writeFile(path.join(source, 'notes.txt'), 'hello\n');
  await writeFile(path.join(source, `${'n'.repeat(150)}.txt`), 'long name');
  await symlink('dir/sub/data.bin', path.join(source, 'link'));
  const packed = packDirectories([{ dir: source, entryPrefix: '' }]);
  const chunks: Buffer[] = [];
  for await (const chunk of packed.stream) chunks.push(chunk as Buffer);
  archive = Buffer.concat(chunks);
});

/** Extracts into sandbox/target with a time limit; checks that nothing appeared in the sandbox outside target. */
async function extractsSafely(bytes: Buffer): Promise<void> {
  const sandbox = await mkdtemp(path.join(os.tmpdir(), 'spotsnap-fuzz-'));
  const target = path.join(sandbox, 'target');
  await mkdir(target);
  try {
    const outcome = await Promise.race([
      extractArchive(Readable.from([bytes]), { root: target, allowedRoots: [target] }).then(
        () => 'extracted',
        () => 'refused',
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('hung'), 5000)),
    ]);
    expect(outcome).not.toBe('hung');
    expect(await readdir(sandbox)).toEqual(['target']);
  } finally {
    await rm(sandbox, { recursive: true, force: true });
  }
}

describe('extractArchive on mutated archives', () => {
  it('never hangs, crashes or writes outside its target when bytes are flipped', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 }), async (flips) => {
        const bytes = Buffer.from(archive);
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        await extractsSafely(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('never hangs, crashes or writes outside its target when cut short or padded with noise', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.uint8Array({ maxLength: 2048 }), async (cut, noise) => {
        await extractsSafely(Buffer.concat([archive.subarray(0, cut % archive.length), noise]));
      }),
      { numRuns: 200 },
    );
  });

  it('never hangs or crashes on random bytes', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 4096 }), async (bytes) => extractsSafely(Buffer.from(bytes))), {
      numRuns: 200,
    });
  });
});
