// The fast half: unit tests beside the code, no Docker engine, in-process S3 stand-ins, a short timeout.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Unit tests: beside the code, and the tests of the test helpers and of the generated docs. */
export const UNIT_TEST_FILES = [
  'agent/**/*.test.ts',
  'criu-bridge/**/*.test.ts',
  'localstack/**/*.test.ts',
  'test/support/**/*.test.ts',
  'test/docs/**/*.test.ts',
  'test/bench/**/*.test.ts',
];

/** The unit project, also one of the two projects of test/vitest.config.ts (`npm test`). */
export const unitProject = {
  test: {
    name: 'unit',
    root,
    include: UNIT_TEST_FILES,
    // An AWS client without an explicit endpoint gets a local refusal that says so, never AWS.
    setupFiles: [path.join(root, 'test/support/unit-aws-guard.ts')],
    testTimeout: 10_000,
    hookTimeout: 10_000,
    // Two cores; the default would be one worker fewer than the cores.
    maxWorkers: 2,
  },
};

export default defineConfig(unitProject);
