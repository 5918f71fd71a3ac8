import { describe, expect, it } from 'vitest';
import { taskEnvironment } from './task-environment.ts';

describe('taskEnvironment', () => {
  it('gives back what the launcher changed for the agent, and drops the saved copies', () => {
    expect(
      taskEnvironment({
        PATH: '/bin',
        MALLOC_ARENA_MAX: '2',
        SPOTSNAP_SAVED_MALLOC_ARENA_MAX: 'spotsnap-unset',
        MALLOC_MMAP_THRESHOLD_: '131072',
        SPOTSNAP_SAVED_MALLOC_MMAP_THRESHOLD_: '65536',
      }),
    ).toEqual({ PATH: '/bin', MALLOC_MMAP_THRESHOLD_: '65536' });
  });

  it('leaves an environment without saved values as it is', () => {
    expect(taskEnvironment({ A: '1' })).toEqual({ A: '1' });
  });
});
