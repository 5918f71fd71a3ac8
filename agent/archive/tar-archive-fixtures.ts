// Test support for the archive tests: temporary directories, archives crafted from raw headers, and trees as lists.
import { lstat, mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';

/** A new empty directory under the system's temporary directory. */
export async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'spotsnap-tar-'));
}

/** Builds an archive from raw headers, as an attacker could. */
export async function crafted(entries: Array<{ header: Partial<tar.Header> & { name: string }; body?: string }>): Promise<Readable> {
  const pack = tar.pack();
  for (const { header, body } of entries) {
    await new Promise<void>((resolve, reject) => pack.entry(header, body ?? '', (e) => (e ? reject(e) : resolve())));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
  return Readable.from([Buffer.concat(chunks)]);
}

/** Every path under `dir`, relative to it, sorted, directories before what they hold. */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const full = path.join(dir, name);
    out.push(path.relative(dir, full));
    if ((await lstat(full)).isDirectory()) out.push(...(await tree(full)).map((p) => path.join(name, p)));
  }
  return out;
}
