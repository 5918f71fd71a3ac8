// Native bindings load from the bundle's native/ directory when it holds them, else from node_modules, and a missing one is reported, not thrown.
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { bundledBindingFile, loadNativeBinding, NATIVE_BINDINGS } from './native-binding.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function bundleDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'native-binding-'));
  dirs.push(dir);
  await mkdir(path.join(dir, 'native'));
  return dir;
}

describe('loadNativeBinding', () => {
  it('loads each binding from node_modules in a checkout', () => {
    for (const name of Object.keys(NATIVE_BINDINGS) as Array<keyof typeof NATIVE_BINDINGS>) {
      const loaded = loadNativeBinding<object>(name);
      expect(loaded.binding, name).toBeDefined();
      expect(loaded.binding ? loaded.from : '').toBe(NATIVE_BINDINGS[name].package);
    }
  });

  it("loads the bundle's own copy when native/ beside the module holds it", async () => {
    const dir = await bundleDir();
    const pkg = createRequire(import.meta.url).resolve(`@napi-rs/blake-hash-${process.platform}-${process.arch}-gnu`);
    const file = path.join(path.dirname(pkg), bundledBindingFile('blake3'));
    await copyFile(file, path.join(dir, 'native', bundledBindingFile('blake3')));
    const loaded = loadNativeBinding<{ blake3(b: Uint8Array): Buffer }>('blake3', pathToFileURL(path.join(dir, 'spotsnap.mjs')).href);
    expect(loaded.binding ? loaded.from : loaded.error).toBe(path.join(dir, 'native', bundledBindingFile('blake3')));
    expect(loaded.binding?.blake3(Buffer.from('abc')).toString('hex')).toBe('6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85');
  });

  it('reports, without throwing, a bundled file that is not a binding', async () => {
    const dir = await bundleDir();
    await writeFile(path.join(dir, 'native', bundledBindingFile('crc32')), 'not an ELF file');
    const loaded = loadNativeBinding<object>('crc32', pathToFileURL(path.join(dir, 'spotsnap.mjs')).href);
    expect(loaded.binding).toBeUndefined();
    expect(loaded.binding ? '' : loaded.error).toContain(path.join(dir, 'native', bundledBindingFile('crc32')));
  });
});

describe('bundledBindingFile', () => {
  it("names the glibc build of the process's platform, as the packages name their files", () => {
    expect(bundledBindingFile('blake3', 'linux', 'arm64')).toBe('blake.linux-arm64-gnu.node');
    expect(bundledBindingFile('crc32', 'linux', 'x64')).toBe('crc32.linux-x64-gnu.node');
  });
});
