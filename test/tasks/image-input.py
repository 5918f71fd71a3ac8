#!/usr/bin/env python3
"""Test task: reads a large input file that comes with the image, a MiB at a time, hashing as it goes.

usage: image-input.py PATH STEP_SECONDS
"""
import hashlib
import os
import sys
import time

path, step_seconds = sys.argv[1], float(sys.argv[2])
size = os.path.getsize(path)
print(f"task started: reading {size >> 20} MiB from {path}", flush=True)
digest = hashlib.sha256()
done = 0
with open(path, "rb") as f:
    while chunk := f.read(1 << 20):
        digest.update(chunk)
        done += len(chunk)
        if done % (10 << 20) == 0:
            print(f"read {done >> 20}/{size >> 20} MiB {digest.hexdigest()[:16]}", flush=True)
        time.sleep(step_seconds)
print(f"final {done} bytes, sha256 {digest.hexdigest()}", flush=True)
