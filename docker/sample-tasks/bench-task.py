#!/usr/bin/env python3
"""Benchmark task: holds MIB of memory, then waits; rewrites a contiguous 10% of it when the file change-now
appears in its working directory. Prints "ready" and "changed" when each is done.

KIND is "random" (incompressible, the default) or "text": lines of bases (A, C, G, T), as a genomics tool
holds reads, which zstd shrinks about 3.5:1.

usage: bench-task.py MIB [random|text]
"""
import os
import sys
import threading
import time

mib = int(sys.argv[1])
kind = sys.argv[2] if len(sys.argv) > 2 else "random"
if kind not in ("random", "text"):
    sys.exit(f"bench-task.py: kind {kind!r} is neither random nor text")
# Each random byte becomes a base, or (1 in 64) the end of a line.
TEXT = bytes(b"ACGT"[b & 3] if b < 252 else 10 for b in range(256))


def fill(size):
    data = os.urandom(size)
    return data.translate(TEXT) if kind == "text" else data


memory = bytearray(mib << 20)
step = 64 << 20
CHANGE_STEP = 1 << 20


def fill_every(first, stride):
    for offset in range(first * step, len(memory), stride * step):
        memory[offset:offset + step] = fill(min(step, len(memory) - offset))


# A thread per core it may use (8 at most: each holds a step or two of temporaries), each filling every n-th
# 64 MiB step: os.urandom lets go of the GIL while the kernel makes the bytes (some 0.3-0.4 GB/s a core here),
# so a 64 GiB task of random memory fills in well under a minute on 8 cores rather than in three or four.
FILLERS = max(1, min(8, len(os.sched_getaffinity(0))))
threads = [threading.Thread(target=fill_every, args=(i, FILLERS)) for i in range(FILLERS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(f"ready {mib} MiB {kind} pid {os.getpid()}", flush=True)
changed = False
while True:
    if not changed and os.path.exists("change-now"):
        start = len(memory) * 45 // 100
        end = start + len(memory) // 10
        # In 1 MiB pieces: one fill() of the whole tenth leaves a temporary of that size in the heap (below
        # glibc's largest mmap threshold, as at 256 MiB), so the task would hold 10% more changed memory.
        for offset in range(start, end, CHANGE_STEP):
            memory[offset:min(offset + CHANGE_STEP, end)] = fill(min(CHANGE_STEP, end - offset))
        changed = True
        print("changed 10%", flush=True)
    time.sleep(0.2)
