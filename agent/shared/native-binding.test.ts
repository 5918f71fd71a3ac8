// Native bindings load from the bundle's native/ directory only when run from a bundle, from node_modules from the source tree, and only once they compute a known value; a missing or wrong one is reported, never thrown.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type Blake3Binding, checkBlake3 } from '../transfer/chunk-digest.ts';
import { checkCrc32, type Crc32Binding } from '../transfer/crc32.ts';
import { bundledBindingFile, lazyNativeBinding, loadNativeBinding, NATIVE_BINDINGS } from './native-binding.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A directory standing for /opt/spotsnap/lib, with an empty native/, and the URL of a bundle in it. */
async function bundleDir(): Promise<{ dir: string; bundleUrl: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'native-binding-'));
  dirs.push(dir);
  await mkdir(path.join(dir, 'native'));
  return { dir, bundleUrl: pathToFileURL(path.join(dir, 'spotsnap.mjs')).href };
}

/** The installed platform package's own file for a binding. */
function installedFile(name: keyof typeof NATIVE_BINDINGS): string {
  const pkg = createRequire(import.meta.url).resolve(`${NATIVE_BINDINGS[name].package}-${process.platform}-${process.arch}-gnu/package.json`);
  return path.join(path.dirname(pkg), bundledBindingFile(name));
}

describe('loadNativeBinding', () => {
  it('loads each binding from node_modules from the source tree, checked', () => {
    const blake3 = loadNativeBinding<Blake3Binding>('blake3', checkBlake3);
    expect(blake3.binding ? blake3.from : blake3.error).toBe('@napi-rs/blake-hash');
    const crc32 = loadNativeBinding<Crc32Binding>('crc32', checkCrc32);
    expect(crc32.binding ? crc32.from : crc32.error).toBe('@node-rs/crc32');
  });

  it("loads a bundle's own copy from native/ beside it", async () => {
    const { dir, bundleUrl } = await bundleDir();
    await copyFile(installedFile('blake3'), path.join(dir, 'native', bundledBindingFile('blake3')));
    const loaded = loadNativeBinding<Blake3Binding>('blake3', checkBlake3, bundleUrl);
    expect(loaded.binding ? loaded.from : loaded.error).toBe(path.join(dir, 'native', bundledBindingFile('blake3')));
  });

  it('never loads a package from the module paths into a bundle whose native/ lacks the file', async () => {
    // node_modules beside the bundle holds the package: a bundle still does not take it.
    const { dir, bundleUrl } = await bundleDir();
    await mkdir(path.join(dir, 'node_modules', '@node-rs'), { recursive: true });
    await writeFile(path.join(dir, 'node_modules', '@node-rs', 'crc32.js'), 'throw new Error("not ours")');
    const loaded = loadNativeBinding<Crc32Binding>('crc32', checkCrc32, bundleUrl);
    expect(loaded.binding).toBeUndefined();
    expect(loaded.binding ? '' : loaded.error).toBe(`${path.join(dir, 'native', bundledBindingFile('crc32'))} is not in the bundle`);
  });

  it('reports a bundled file that is not a binding, and one that computes the wrong value, without throwing', async () => {
    const { dir, bundleUrl } = await bundleDir();
    await writeFile(path.join(dir, 'native', bundledBindingFile('crc32')), 'not an ELF file');
    const notBinding = loadNativeBinding<Crc32Binding>('crc32', checkCrc32, bundleUrl);
    expect(notBinding.binding).toBeUndefined();
    expect(notBinding.binding ? '' : notBinding.error).toContain(path.join(dir, 'native', bundledBindingFile('crc32')));

    // The BLAKE3 binding put where the CRC-32 one belongs: it loads, but has no crc32 to give the check value.
    await copyFile(installedFile('blake3'), path.join(dir, 'native', bundledBindingFile('crc32')));
    const wrong = loadNativeBinding<Crc32Binding>('crc32', checkCrc32, bundleUrl);
    expect(wrong.binding).toBeUndefined();
    expect(wrong.binding ? '' : wrong.error).toMatch(/crc32 is not a function/);

    // One whose function answers wrongly is refused by its check.
    const lying: Blake3Binding = { blake3: () => Buffer.alloc(32) };
    expect(() => checkBlake3(lying)).toThrow(`it gives ${'0'.repeat(64)} for BLAKE3("abc"), not 6437b3ac`);
    expect(() => checkCrc32({ crc32: () => 1 })).toThrow('it gives 0x1 for CRC-32("123456789"), not 0xcbf43926');
  });
});

describe('lazyNativeBinding', () => {
  it('loads nothing until asked, then once: every later call gives the same result', () => {
    let checks = 0;
    const lazy = lazyNativeBinding<Crc32Binding>('crc32', (binding) => {
      checks++;
      checkCrc32(binding);
    });
    expect(checks).toBe(0);
    const first = lazy();
    expect(first.binding?.crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(lazy()).toBe(first);
    expect(checks).toBe(1);
  });
});

describe('bundledBindingFile', () => {
  it("names the glibc build of the process's platform, as the packages name their files", () => {
    expect(bundledBindingFile('blake3', 'linux', 'arm64')).toBe('blake.linux-arm64-gnu.node');
    expect(bundledBindingFile('crc32', 'linux', 'x64')).toBe('crc32.linux-x64-gnu.node');
  });
});
