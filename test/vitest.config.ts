// Every test (`npm test`): the unit project, and the end-to-end project with its images and one shared S3 server.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configDefaults, defineConfig } from 'vitest/config';
import { UNIT_TEST_FILES, unitProject } from './vitest.unit.config.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export default defineConfig({
  test: {
    root,
    // Two cores: end-to-end files each run real containers, so files run one or two at a time.
    maxWorkers: 2,
    projects: [
      unitProject,
      {
        test: {
          name: 'e2e',
          root,
          include: ['test/**/*.test.ts'],
          // Every test under test/ that the unit project does not run.
          exclude: [...configDefaults.exclude, ...UNIT_TEST_FILES.filter((glob) => glob.startsWith('test/'))],
          // Builds the images and starts the S3 server (moto, or LocalStack with SPOTSNAP_TEST_S3=localstack).
          globalSetup: [path.join(root, 'test/support/global-setup.ts')],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          env: {
            TESTCONTAINERS_RYUK_DISABLED: 'true',
            TESTCONTAINERS_HOST_OVERRIDE: '127.0.0.1',
          },
        },
      },
    ],
  },
});
