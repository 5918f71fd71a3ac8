#!/usr/bin/env python3
"""Test task: a parent process relaying the output of a child process that is itself multi-threaded.

usage: threaded-child.py STEPS STEP_SECONDS THREADS   (as the child: threaded-child.py --child STEPS STEP_SECONDS THREADS)
"""
import hashlib
import subprocess
import sys
import threading
import time


def child(steps: int, step_seconds: float, threads: int) -> None:
    # Each thread keeps its own hash chain; a barrier makes every step's result independent of scheduling.
    chains = [hashlib.sha256(f"thread {t}".encode()).digest() for t in range(threads)]
    state = [bytearray(4 << 20) for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    end = threading.Barrier(threads + 1)
    current = [0]

    def work(t: int) -> None:
        while True:
            start.wait()
            step = current[0]
            if step < 0:
                return
            for _ in range(300):
                chains[t] = hashlib.sha256(chains[t] + step.to_bytes(4, "big")).digest()
            offset = (step * 65536 * (t + 1)) % len(state[t])
            state[t][offset:offset + 32] = chains[t]
            end.wait()

    workers = [threading.Thread(target=work, args=(t,), name=f"worker-{t}") for t in range(threads)]
    for w in workers:
        w.start()
    for step in range(steps):
        current[0] = step
        start.wait()
        end.wait()
        combined = hashlib.sha256(b"".join(chains)).hexdigest()[:16]
        print(f"child step {step + 1}/{steps} {combined}", flush=True)
        time.sleep(step_seconds)
    current[0] = -1
    start.wait()
    for w in workers:
        w.join()
    print(f"child final {hashlib.sha256(b''.join(bytes(s) for s in state)).hexdigest()}", flush=True)


def parent(steps: int, step_seconds: float, threads: int) -> None:
    print(f"task started: parent with a {threads}-thread child, {steps} steps", flush=True)
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(steps), str(step_seconds), str(threads)], stdout=subprocess.PIPE, text=True)
    seen = hashlib.sha256()
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.update(line.encode())
        print(f"relayed: {line.rstrip()}", flush=True)
    code = proc.wait()
    print(f"final child exited {code}, relayed sha256 {seen.hexdigest()}", flush=True)


if sys.argv[1] == "--child":
    child(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
else:
    parent(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]))
