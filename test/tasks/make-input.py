#!/usr/bin/env python3
"""Image build helper: writes MIB of seeded bytes to PATH, the large input the image-input task reads."""
import random
import sys

path, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(14)
with open(path, "wb") as f:
    for _ in range(mib):
        f.write(rng.randbytes(1 << 20))
