// End to end: /opt/spotsnap copied into images of other kinds checkpoints and restores a task in each.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LogEvent } from '../../agent/shared/log-events.ts';
import { jobEnv } from '../support/job-env.ts';
import { agentEvents, runToCompletion, runUntilCheckpoint } from '../support/task-container.ts';
import { useStandIns } from '../support/stand-ins.ts';

const { s3Endpoint, bucket, imds } = useStandIns({ bucket: 'e2e-drop-in' });

// Built by docker/build-foreign-images.sh, each with the README's two lines:
// COPY --from=spotsnap:dev /opt/spotsnap /opt/spotsnap and ENTRYPOINT ["/opt/spotsnap/bin/spotsnap", "run", "--"].
const images = [
  { kind: 'Debian 12', image: 'spotsnap-foreign-bookworm:dev' },
  { kind: 'a distroless-style glibc image (no package manager)', image: 'spotsnap-foreign-distroless:dev' },
  { kind: 'a busybox image with no libc at all', image: 'spotsnap-foreign-busybox:dev' },
];

describe('the self-contained bundle in other images', () => {
  it.each(images)('checkpoints and restores a task in $kind', async ({ image }) => {
    const command = ['sh', '/opt/spotsnap/samples/append-task.sh', '70', '0.05'];
    const uninterrupted = await runToCompletion(command, {}, 60_000, undefined, image);
    expect(uninterrupted.stdout).toMatch(/^journal done: 70 entries/m);

    const jobId = `drop-in-${randomUUID()}`;
    const env = (attempt: number) => jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId, attempt });
    imds.scheduleNotice(2000);
    const first = await runUntilCheckpoint(command, env(1), undefined, 120_000, image);
    imds.clearNotice();
    const second = await runToCompletion(command, env(2), 120_000, undefined, image);

    expect(agentEvents(second.stderr)).toContain(LogEvent.restoreDone);
    expect(second.exitCode).toBe(0);
    expect(first.stdout + second.stdout).toBe(uninterrupted.stdout);
  });

  it('passes spotsnap doctor in the busybox image', async () => {
    const env = jobEnv({ s3Endpoint, imdsUrl: imds.url, bucket, jobId: 'doctor-busybox', attempt: 1 });
    const result = await runToCompletion(['doctor'], env, 60_000, ['/opt/spotsnap/bin/spotsnap'], 'spotsnap-foreign-busybox:dev');
    expect(result.exitCode, result.stdout).toBe(0);
  });
});
