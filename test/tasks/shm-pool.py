#!/usr/bin/env python3
"""Test task: a multiprocessing pool whose workers update a block of shared memory in /dev/shm, step by step.

usage: shm-pool.py MIB STEPS STEP_SECONDS WORKERS
"""
import hashlib
import multiprocessing
import sys
import time
from multiprocessing import shared_memory


def work(args: tuple[str, int, int, int]) -> str:
    name, worker, workers, step = args
    shm = shared_memory.SharedMemory(name=name)
    try:
        part = len(shm.buf) // workers
        base = worker * part
        # Each worker rewrites a 64 KiB stretch of its part from what it held, and reports its digest.
        offset = base + (step * 65536) % (part - 65536)
        old = bytes(shm.buf[offset:offset + 65536])
        new = hashlib.sha256(old + step.to_bytes(4, "big")).digest() * 2048
        shm.buf[offset:offset + 65536] = new
        return hashlib.sha256(new).hexdigest()[:8]
    finally:
        shm.close()


def main() -> None:
    mib, steps, step_seconds, workers = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    print(f"task started: pool of {workers} workers on {mib} MiB of shared memory, {steps} steps", flush=True)
    shm = shared_memory.SharedMemory(create=True, size=mib << 20)
    shm.buf[:] = (bytes(range(256)) * 4096) * mib
    try:
        with multiprocessing.Pool(workers) as pool:
            for step in range(steps):
                digests = pool.map(work, [(shm.name, w, workers, step) for w in range(workers)])
                print(f"step {step + 1}/{steps} {' '.join(digests)}", flush=True)
                time.sleep(step_seconds)
        print(f"final {hashlib.sha256(bytes(shm.buf)).hexdigest()}", flush=True)
    finally:
        shm.close()
        shm.unlink()


if __name__ == "__main__":
    main()
