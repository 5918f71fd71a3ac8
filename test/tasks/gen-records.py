#!/usr/bin/env python3
"""Test helper: writes LINES seeded records (with repeats) to stdout in chunks, reporting progress on fd 3."""
import os
import random
import sys
import time

lines = int(sys.argv[1])
delay = float(sys.argv[2])
chunks = 40
rng = random.Random(14)
progress = os.fdopen(3, "w")
out = sys.stdout
for chunk in range(chunks):
    for _ in range(lines // chunks):
        out.write(f"sample{rng.randrange(20000):05d}\tchr{rng.randrange(1, 23)}\t{rng.randrange(10**8):08d}\n")
    out.flush()
    progress.write(f"generated {(chunk + 1) * (lines // chunks)}/{lines}\n")
    progress.flush()
    time.sleep(delay)
