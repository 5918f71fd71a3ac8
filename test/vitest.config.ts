// Test configuration: unit tests beside the code, end-to-end tests under test/, one S3 emulator for the run.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export default defineConfig({
  test: {
    root,
    include: ['agent/**/*.test.ts', 'criu-bridge/**/*.test.ts', 'localstack/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: [path.join(root, 'test/support/global-setup.ts')],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Two cores: end-to-end files each run real containers, so files run one or two at a time.
    maxWorkers: 2,
    env: {
      TESTCONTAINERS_RYUK_DISABLED: 'true',
      TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1',
    },
  },
});
