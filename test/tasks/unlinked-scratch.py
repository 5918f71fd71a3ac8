#!/usr/bin/env python3
"""Test task: keeps MIB of scratch data in an unlinked temporary file (tempfile.TemporaryFile), reads it back at the end.

usage: unlinked-scratch.py MIB STEPS STEP_SECONDS
"""
import hashlib
import random
import sys
import tempfile
import time

mib = int(sys.argv[1])
steps = int(sys.argv[2])
step_seconds = float(sys.argv[3])
block = 1 << 20
print(f"task started: {mib} MiB in an unlinked temporary file, {steps} steps", flush=True)
rng = random.Random(14)
scratch = tempfile.TemporaryFile()
for i in range(mib):
    scratch.write(rng.randbytes(block))
scratch.flush()
running = hashlib.sha256()
for step in range(steps):
    # Read one block back, rewrite it from what it held and the step: the file's content is the whole history.
    offset = rng.randrange(mib) * block
    scratch.seek(offset)
    old = scratch.read(block)
    new = hashlib.sha256(old + str(step).encode()).digest() * (block // 32)
    scratch.seek(offset)
    scratch.write(new)
    scratch.flush()
    running.update(new)
    print(f"step {step + 1}/{steps} {running.hexdigest()[:16]}", flush=True)
    time.sleep(step_seconds)
scratch.seek(0)
whole = hashlib.sha256()
while chunk := scratch.read(block):
    whole.update(chunk)
print(f"final {whole.hexdigest()}", flush=True)
