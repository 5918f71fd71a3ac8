#!/bin/sh
# Sample task: a process tree joined by pipes (producer | transformer | gzip) writing a compressed file.
lines="${1:-300}"
delay="${2:-0.02}"
echo "task started: pipeline of $lines lines"
seq 1 "$lines" | while read -r i; do
  echo "record $i $(printf '%s' "$i" | sha256sum | cut -c1-16)"
  sleep "$delay"
done | gzip -n -c > pipeline-output.gz
echo "pipeline done: $(gzip -dc pipeline-output.gz | wc -l) lines, sha256 $(sha256sum < pipeline-output.gz | cut -c1-64)"
