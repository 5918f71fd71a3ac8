// The environment the agent builds its S3 client from, stubbed for one unit test file: the endpoint given, with the tests' credentials and region.
import { vi } from 'vitest';
import { TEST_AWS_ENV } from './test-aws-env.ts';

/** Points AWS_ENDPOINT_URL_S3 at `endpoint` and sets the tests' credentials and region, until vitest unstubs them. */
export function stubAgentS3Env(endpoint: string): void {
  for (const [name, value] of Object.entries({ AWS_ENDPOINT_URL_S3: endpoint, ...TEST_AWS_ENV })) vi.stubEnv(name, value);
}
