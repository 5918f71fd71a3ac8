#!/usr/bin/env python3
"""Benchmark task: holds MIB of incompressible memory, then waits; rewrites a contiguous 10% of it when the
file change-now appears in its working directory. Prints "ready" and "changed" when each is done.

usage: bench-task.py MIB
"""
import os
import sys
import time

mib = int(sys.argv[1])
memory = bytearray(mib << 20)
step = 64 << 20
for offset in range(0, len(memory), step):
    memory[offset:offset + step] = os.urandom(min(step, len(memory) - offset))
print(f"ready {mib} MiB pid {os.getpid()}", flush=True)
changed = False
while True:
    if not changed and os.path.exists("change-now"):
        start = len(memory) * 45 // 100
        size = len(memory) // 10
        memory[start:start + size] = os.urandom(size)
        changed = True
        print("changed 10%", flush=True)
    time.sleep(0.2)
