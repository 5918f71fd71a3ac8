#!/usr/bin/env python3
"""Test task: keeps a log file open for writing outside the working directory, appending to it step by step.

usage: outside-writer.py PATH STEPS STEP_SECONDS
"""
import hashlib
import os
import sys
import time

path, steps, step_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
print(f"task started: writing {path}, {steps} steps", flush=True)
os.makedirs(os.path.dirname(path), exist_ok=True)
running = hashlib.sha256()
with open(path, "w") as log:
    for step in range(steps):
        running.update(str(step).encode())
        line = f"entry {step + 1}/{steps} {running.hexdigest()}\n"
        log.write(line * 64)
        log.flush()
        print(f"step {step + 1}/{steps} {running.hexdigest()[:16]}", flush=True)
        time.sleep(step_seconds)
with open(path, "rb") as f:
    data = f.read()
print(f"final {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}", flush=True)
