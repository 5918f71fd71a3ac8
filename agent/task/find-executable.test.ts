import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findExecutable } from './find-executable.ts';

describe('findExecutable', () => {
  it('takes the first executable match on the path', async () => {
    const [a, b] = await Promise.all([mkdtemp(path.join(os.tmpdir(), 'fe-')), mkdtemp(path.join(os.tmpdir(), 'fe-'))]);
    await writeFile(path.join(a, 'tool'), 'not executable');
    await writeFile(path.join(b, 'tool'), '#!/bin/sh\n');
    await chmod(path.join(b, 'tool'), 0o755);
    expect(findExecutable('tool', `${a}::${b}`)).toBe(path.join(b, 'tool'));
    expect(findExecutable('no-such-tool', `${a}:${b}`)).toBeUndefined();
  });
});
