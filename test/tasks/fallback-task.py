#!/usr/bin/env python3
"""Test task: keeps state in memory and in files inside and outside the working directory, says when it finds an
earlier attempt's files at a fresh start, and crashes at once (or fails with exit 3) when it is restored into a
container marked for it.

usage: fallback-task.py STEPS STEP_SECONDS
The marks are CRASH_MARK and FAIL_MARK: the task that starts where a mark is absent crashes (SIGSEGV), or exits
with 3, as soon as it sees it, so a restore into a marked container does so right away, and a fresh start there
runs normally.
"""
import hashlib
import os
import signal
import sys
import time

CRASH_MARK = "/etc/spotsnap-test/crash-when-restored"
FAIL_MARK = "/etc/spotsnap-test/fail-when-restored"
steps, step_seconds = int(sys.argv[1]), float(sys.argv[2])
crash_when_marked = not os.path.exists(CRASH_MARK)
fail_when_marked = not os.path.exists(FAIL_MARK)
for leftover in ("/work/fallback-progress.log", "/tmp/fallback-scratch/state"):
    if os.path.exists(leftover):
        print(f"leftover from an earlier attempt: {leftover}", flush=True)
print(f"task started: {steps} steps", flush=True)
os.makedirs("/tmp/fallback-scratch", exist_ok=True)
progress = open("/work/fallback-progress.log", "a")
state = open("/tmp/fallback-scratch/state", "w")
running = hashlib.sha256()
for step in range(steps):
    if crash_when_marked and os.path.exists(CRASH_MARK):
        os.kill(os.getpid(), signal.SIGSEGV)
    if fail_when_marked and os.path.exists(FAIL_MARK):
        print("failing as marked", flush=True)
        sys.exit(3)
    running.update(f"{step}".encode())
    progress.write(f"{step}\n")
    progress.flush()
    state.seek(0)
    state.write(running.hexdigest())
    state.flush()
    print(f"step {step + 1}/{steps} {running.hexdigest()[:16]}", flush=True)
    time.sleep(step_seconds)
with open("/tmp/fallback-scratch/state") as f:
    print(f"scratch state {f.read()[:16]}", flush=True)
print(f"final {running.hexdigest()}", flush=True)
