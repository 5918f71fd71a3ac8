#!/usr/bin/env python3
"""Sample task: holds MiB of state in memory and evolves it step by step; its output depends on every step.

usage: memory-task.py [MIB] [STEPS] [STEP_SECONDS] [PROGRESS_FILE]
With PROGRESS_FILE, each step is also appended to that file (kept open) in the working directory.
"""
import hashlib
import os
import sys
import time

mib = int(sys.argv[1]) if len(sys.argv) > 1 else 64
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 60
step_seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.1
progress = open(sys.argv[4], "a") if len(sys.argv) > 4 else None

print(f"task started: {mib} MiB, {steps} steps", flush=True)
memory = bytearray(bytes(range(256)) * (mib * 4096))
running = hashlib.sha256()
chunk = 1 << 20
for step in range(steps):
    # Rewrite one MiB per step, chosen by the step, so the state is a function of the whole history.
    offset = (step * 7919 * chunk) % len(memory)
    block = hashlib.sha256(f"{step}:{running.hexdigest()}".encode()).digest() * (chunk // 32)
    memory[offset:offset + chunk] = block
    running.update(memory[offset:offset + chunk])
    line = f"step {step + 1}/{steps} {running.hexdigest()[:16]}"
    print(line, flush=True)
    if progress:
        progress.write(line + "\n")
        progress.flush()
    time.sleep(step_seconds)
if progress:
    progress.close()
    with open(sys.argv[4], "rb") as f:
        print(f"progress file sha256 {hashlib.sha256(f.read()).hexdigest()}", flush=True)
# The task's /proc is its own: its PID there is the one it has (also after a restore into a new container).
with open(f"/proc/{os.getpid()}/stat") as stat:
    print(f"/proc/self is this process: {stat.read().split()[0] == str(os.getpid())}", flush=True)
print(f"final {hashlib.sha256(memory).hexdigest()}", flush=True)
