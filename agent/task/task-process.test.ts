// A supervised tree's output goes to the streams it is given, its exit is read from its status pipe, its run time from the clock.
import { readFileSync, writeSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../test/support/fake-clock.ts';
import { closeQuietly, createOsPipes } from './os-pipe.ts';
import { TaskProcess, type ProcessExit, type TaskPipes } from './task-process.ts';

/** A PID no process can have (above the kernel's pid_max): the tree's /proc lookups find nothing, signals go nowhere. */
const NO_SUCH_PID = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim()) + 1;

/** The tree's three pipes; each test ends its tree (endTree), which closes them all (the relays own the read ends). */
async function pipes(): Promise<TaskPipes> {
  const [stdout, stderr, status] = await createOsPipes(3);
  return { stdout: stdout!, stderr: stderr!, status: status! };
}

/** Collects what a stream is given. */
function collector(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** Ends the tree as its parent would: every write end closed, then the parent's exit. */
function endTree(p: TaskPipes, settle: (exit: ProcessExit) => void, exit: ProcessExit): void {
  for (const pipe of [p.stdout, p.stderr, p.status]) closeQuietly(pipe.writeFd);
  settle(exit);
}

describe('TaskProcess.attach', () => {
  it("copies the tree's stdout and stderr to the streams it is given, and reads the command's exit status", async () => {
    const p = await pipes();
    const out = collector();
    const err = collector();
    const procOutcomes: string[] = [];
    let settle!: (exit: ProcessExit) => void;
    const parentExit = new Promise<ProcessExit>((resolve) => (settle = resolve));
    const task = TaskProcess.attach(NO_SUCH_PID, p, parentExit, {
      output: { stdout: out.stream, stderr: err.stream },
      onProcOutcome: (o) => procOutcomes.push(o),
    });
    expect(task.pipeKeys).toEqual({ stdout: p.stdout.key, stderr: p.stderr.key, status: p.status.key });
    writeSync(p.status.writeFd, 'proc own\n');
    writeSync(p.stdout.writeFd, 'to stdout\n');
    writeSync(p.stderr.writeFd, 'to stderr\n');
    writeSync(p.status.writeFd, '3\n');
    endTree(p, settle, { code: 0, reason: 'exit 0' });
    await expect(task.exited).resolves.toEqual({ code: 3, commandEnded: true, reason: 'the task exited with 3' });
    expect(out.text()).toBe('to stdout\n');
    expect(err.text()).toBe('to stderr\n');
    expect(procOutcomes).toEqual(['own']);
  });

  it('passes on the signal that ended a tree which reported no status', async () => {
    const p = await pipes();
    let settle!: (exit: ProcessExit) => void;
    const task = TaskProcess.attach(NO_SUCH_PID, p, new Promise<ProcessExit>((resolve) => (settle = resolve)), {
      output: { stdout: new PassThrough(), stderr: new PassThrough() },
    });
    endTree(p, settle, { code: 137, signal: 137, reason: 'killed by SIGKILL' });
    await expect(task.exited).resolves.toEqual({ code: 137, commandEnded: false, reason: "the task's namespace ended without a status (killed by SIGKILL)" });
  });

  it('counts its run time on the clock it is given, on top of the history it carries', async () => {
    const p = await pipes();
    const clock = new FakeClock();
    let settle!: (exit: ProcessExit) => void;
    const task = TaskProcess.attach(NO_SUCH_PID, p, new Promise<ProcessExit>((resolve) => (settle = resolve)), {
      clock,
      output: { stdout: new PassThrough(), stderr: new PassThrough() },
    });
    task.history = { runMs: 60_000, cpuMs: 5_000, interruptions: 1 };
    clock.advance(1_500);
    expect(task.usage()).toEqual({ runMs: 61_500, cpuMs: 5_000 });
    endTree(p, settle, { code: 0, reason: 'exit 0' });
    await task.exited;
  });
});
