import { describe, expect, it } from 'vitest';
import { CompressionPace } from './compression-pace.ts';

const MiB = 1 << 20;

describe('CompressionPace', () => {
  it('assumes compression pays until both the workers and the uploads have been measured', () => {
    const pace = new CompressionPace();
    expect(pace.pays(2, 4)).toBe(true);
    for (let i = 0; i < 3; i++) pace.noteCompressed(MiB, 10);
    expect(pace.pays(2, 4)).toBe(true);
    expect(pace.figures()).toEqual({ zstdMBps: 105, putMBps: undefined });
  });

  it('says no when the workers compress slower than the uploads carry raw bytes (few cores, a fast server)', () => {
    const pace = new CompressionPace();
    // 120 MB/s a worker; an 8 MiB pack in 20 ms, four in flight: 1.7 GB/s.
    for (let i = 0; i < 4; i++) pace.noteCompressed(MiB, 8.7);
    for (let i = 0; i < 4; i++) pace.notePut(8 * MiB, 20);
    expect(pace.pays(2, 4)).toBe(false);
    // Sixteen workers on the same link would keep up.
    expect(pace.pays(16, 4)).toBe(true);
  });

  it('says yes when the link is the limit (a pack takes 100 ms against S3 over the network)', () => {
    const pace = new CompressionPace();
    for (let i = 0; i < 4; i++) pace.noteCompressed(MiB, 8.7);
    for (let i = 0; i < 4; i++) pace.notePut(8 * MiB, 100);
    expect(pace.pays(4, 4)).toBe(true);
  });

  it('follows a change of pace, and ignores samples without time or bytes', () => {
    const pace = new CompressionPace();
    for (let i = 0; i < 4; i++) pace.noteCompressed(MiB, 8.7);
    for (let i = 0; i < 4; i++) pace.notePut(8 * MiB, 100);
    expect(pace.pays(4, 4)).toBe(true);
    // The link got much faster: after a few packs the judgement turns.
    for (let i = 0; i < 12; i++) pace.notePut(8 * MiB, 10);
    pace.notePut(8 * MiB, 0);
    pace.notePut(0, 10);
    expect(pace.pays(4, 4)).toBe(false);
  });
});
