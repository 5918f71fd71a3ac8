// A file sequence reads its files as one run of bytes, across their boundaries and past empty ones, and refuses what is not in it.
import { mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seededBytes } from '../support/seeded-bytes.ts';
import { FileSequence } from './file-sequence.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'file-sequence-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function readlinkOrEmpty(link: string): string {
  try {
    return readlinkSync(link);
  } catch {
    return '';
  }
}

function files(...contents: Buffer[]): string[] {
  return contents.map((content, i) => {
    const file = path.join(dir, `part-${i}-${content.length}-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, content);
    return file;
  });
}

describe('FileSequence', () => {
  const a = seededBytes('file-sequence/a', 5000);
  const b = seededBytes('file-sequence/b', 3);
  const c = seededBytes('file-sequence/c', 7000);
  const whole = Buffer.concat([a, b, c]);

  it('reads every range of the files one after the other, an empty file between them included', () => {
    const sequence = new FileSequence(files(a, Buffer.alloc(0), b, c));
    try {
      expect(sequence.bytes).toBe(whole.length);
      for (const [position, length] of [
        [0, whole.length],
        [4990, 20],
        [5000, 3],
        [4999, 5],
        [whole.length - 1, 1],
        [123, 0],
      ] as const) {
        const buffer = Buffer.alloc(length + 2, 0xee);
        sequence.read(buffer, length, position);
        expect(buffer.subarray(0, length).equals(whole.subarray(position, position + length))).toBe(true);
        expect(buffer.subarray(length)).toEqual(Buffer.from([0xee, 0xee]));
      }
    } finally {
      sequence.close();
    }
  });

  it('refuses a range past its end, and a file that shrank after it was opened, naming it', () => {
    const [first, second] = files(a, c);
    const sequence = new FileSequence([first!, second!]);
    try {
      expect(() => sequence.read(Buffer.alloc(10), 10, 11_995)).toThrow(/bytes 11995-12004 are outside its 12000 bytes/);
      truncateSync(second!, 100);
      expect(() => sequence.read(Buffer.alloc(200), 200, 5000)).toThrow(new RegExp(`${second} ended at byte 100, before the 7000`));
    } finally {
      sequence.close();
    }
  });

  it('reads a file named many times over as often as it is named, with one descriptor for it', () => {
    const [piece] = files(b);
    const sequence = new FileSequence(Array.from({ length: 1000 }, () => piece!));
    try {
      expect(sequence.bytes).toBe(3000);
      const buffer = Buffer.alloc(3000);
      sequence.read(buffer, 3000, 0);
      expect(buffer.equals(Buffer.concat(Array.from({ length: 1000 }, () => b)))).toBe(true);
      expect(readdirSync('/proc/self/fd').filter((fd) => readlinkOrEmpty(`/proc/self/fd/${fd}`) === realpathSync(piece!)).length).toBe(1);
    } finally {
      sequence.close();
    }
    expect(readdirSync('/proc/self/fd').filter((fd) => readlinkOrEmpty(`/proc/self/fd/${fd}`) === realpathSync(piece!)).length).toBe(0);
  });

  it('refuses no files and a missing one, and leaves none of the others open', () => {
    expect(() => new FileSequence([])).toThrow(/no file was named/);
    const [first] = files(a);
    expect(() => new FileSequence([first!, path.join(dir, 'absent')])).toThrow(/ENOENT.*absent/);
    expect(readdirSync('/proc/self/fd').filter((fd) => readlinkOrEmpty(`/proc/self/fd/${fd}`) === realpathSync(first!)).length).toBe(0);
  });
});
