import { describe, expect, it } from 'vitest';
import { commandOf } from './dispatch.ts';

describe('commandOf', () => {
  it('takes the command after an optional --', () => {
    expect(commandOf(['--', 'python3', 'task.py', '--', 'x'])).toEqual(['python3', 'task.py', '--', 'x']);
    expect(commandOf(['sh', '-c', 'true'])).toEqual(['sh', '-c', 'true']);
    expect(commandOf(['--'])).toBeUndefined();
    expect(commandOf([])).toBeUndefined();
  });
});
