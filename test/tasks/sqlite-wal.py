#!/usr/bin/env python3
"""Test task: holds an SQLite database open in WAL mode in the working directory, adding rows step by step.

usage: sqlite-wal.py STEPS ROWS_PER_STEP STEP_SECONDS
"""
import hashlib
import random
import sqlite3
import sys
import time

steps, rows, step_seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
print(f"task started: sqlite in WAL mode, {steps} steps of {rows} rows", flush=True)
rng = random.Random(14)
db = sqlite3.connect("variants.db")
print(f"journal mode {db.execute('PRAGMA journal_mode=WAL').fetchone()[0]}", flush=True)
db.execute("CREATE TABLE IF NOT EXISTS variant (id INTEGER PRIMARY KEY, chrom TEXT, pos INTEGER, depth INTEGER)")
for step in range(steps):
    with db:
        db.executemany("INSERT INTO variant (chrom, pos, depth) VALUES (?, ?, ?)",
                       [(f"chr{rng.randrange(1, 23)}", rng.randrange(10**8), rng.randrange(200)) for _ in range(rows)])
        db.execute("UPDATE variant SET depth = depth + 1 WHERE id % 97 = ?", (step % 97,))
    count, depth = db.execute("SELECT count(*), sum(depth) FROM variant").fetchone()
    print(f"step {step + 1}/{steps} rows {count} depth {depth}", flush=True)
    time.sleep(step_seconds)
digest = hashlib.sha256()
for row in db.execute("SELECT id, chrom, pos, depth FROM variant ORDER BY id"):
    digest.update(repr(row).encode())
db.close()
print(f"final {digest.hexdigest()}", flush=True)
