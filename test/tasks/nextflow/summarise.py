#!/usr/bin/env python3
"""Test task: summarises seeded records from stdin per sample and chromosome, in CHUNKS slow chunks; writes OUT.

usage: summarise.py OUT CHUNKS CHUNK_SECONDS
"""
import collections
import hashlib
import sys
import time

out, chunks, chunk_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
lines = sys.stdin.readlines()
print(f"info: {len(lines)} records to summarise", file=sys.stderr, flush=True)
per = max(1, len(lines) // chunks)
counts: collections.Counter[tuple[str, str]] = collections.Counter()
depth: collections.Counter[tuple[str, str]] = collections.Counter()
for chunk in range(chunks):
    for line in lines[chunk * per:(chunk + 1) * per if chunk < chunks - 1 else len(lines)]:
        sample, chrom, pos = line.rstrip("\n").split("\t")
        counts[(sample[:8], chrom)] += 1
        depth[(sample[:8], chrom)] += int(pos) % 97
    print(f"summarised chunk {chunk + 1}/{chunks} groups {len(counts)}", flush=True)
    time.sleep(chunk_seconds)
with open(out, "w") as f:
    for key in sorted(counts):
        f.write(f"{key[0]}\t{key[1]}\t{counts[key]}\t{depth[key]}\n")
with open(out, "rb") as f:
    print(f"summary sha256 {hashlib.sha256(f.read()).hexdigest()}", flush=True)
print("info: done", file=sys.stderr, flush=True)
