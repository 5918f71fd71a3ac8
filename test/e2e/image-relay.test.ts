// End to end: the image relay the task image ships (criu-bridge/image-stream-relay.c), driven by a stand-in that speaks CRIU's image-streaming side and the agent's lines, for what a real restore never shows: each refusal and its exit status.
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TASK_IMAGE } from '../support/task-container.ts';

const RELAY = '/opt/spotsnap/bin/spotsnap-image-relay';
const DRIVER = readFileSync(new URL('../fixtures/image-relay/fake-criu-streamer.py', import.meta.url), 'utf8');

interface Outcome {
  case: string;
  lines: string[];
  exit: number;
  stdout: string;
  stderr: string;
  [field: string]: unknown;
}

/** Runs one case of the driver in a container of the task image, against the relay it ships. */
async function drive(caseName: string): Promise<Outcome> {
  const run = await execa('docker', ['run', '--rm', '-i', '--network', 'host', '--entrypoint', 'python3', TASK_IMAGE, '-', RELAY, caseName], {
    input: DRIVER,
    reject: false,
    timeout: 60_000,
  });
  if (run.exitCode !== 0) throw new Error(`the relay's driver failed (${run.exitCode}): ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Outcome;
}

describe('the image relay', () => {
  it("answers CRIU's requests as the agent says, hands each pipe over and ends with CRIU's connection", async () => {
    const outcome = await drive('serve');
    expect(outcome.lines).toEqual(['listening', 'open pages-1.img', expect.stringMatching(/^pipe \d+$/), 'open inventory.img', 'end']);
    expect(outcome.exists).toBe(true);
    expect(outcome.missingExists).toBe(false);
    // What the agent wrote through its own descriptor is what CRIU read, to the end, once the relay let go of it.
    expect(outcome.pipeBytes).toBe(3 << 20);
    expect(outcome.pipeMatches).toBe(true);
    expect(outcome.pipeSize).toBe(1 << 20);
    expect(outcome.socketLeft).toBe(false);
    expect(outcome.exit).toBe(0);
    expect(outcome.stderr).toBe('');
  });

  it.each([
    { name: 'bad-name', exit: 4, says: /^spotsnap-image-relay: a request that is not an image name$/ },
    { name: 'bad-answer', exit: 4, says: /^spotsnap-image-relay: an answer other than yes or no$/ },
    { name: 'not-taken', exit: 4, says: /^spotsnap-image-relay: the agent did not take the pipe$/ },
    // Not killed by SIGPIPE: an exit status the agent reports, with why.
    { name: 'criu-gone', exit: 3, says: /^spotsnap-image-relay: replying: Broken pipe$/ },
    { name: 'usage', exit: 2, says: /^usage: spotsnap-image-relay IMAGES_DIR/ },
    { name: 'long-dir', exit: 2, says: /\/streamer-serve\.sock is longer than a UNIX socket path may be \(107 bytes\): use a shorter directory$/ },
  ])('$name: exits with $exit and says why on stderr', async ({ name, exit, says }) => {
    const outcome = await drive(name);
    expect(outcome.exit).toBe(exit);
    expect(outcome.stderr.trim()).toMatch(says);
    // Nothing reaches the agent past the refusal.
    expect(outcome.lines).not.toContain('end');
  });
});
