#!/bin/sh
# Test task: GNU sort with a 1 MiB buffer in a pipeline, spilling sorted runs to /tmp before it merges them.
# usage: sort-spill.sh LINES CHUNK_SECONDS
lines="${1:-400000}"
delay="${2:-0.2}"
echo "task started: sort of $lines lines spilling to /tmp"
# Progress goes to fd 3 (the task's stdout); the records go down the pipeline.
exec 3>&1
result=$(python3 /opt/spotsnap-tests/gen-records.py "$lines" "$delay" | sort -S 1M -T /tmp | uniq -c | sha256sum | cut -c1-64)
echo "sort done: sha256 $result"
