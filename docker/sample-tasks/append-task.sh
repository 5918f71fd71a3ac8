#!/bin/sh
# Sample task: keeps a journal file in its working directory open for append and adds an entry per step.
steps="${1:-80}"
delay="${2:-0.05}"
echo "task started: journal of $steps entries"
exec 3>>journal.txt
i=1
while [ "$i" -le "$steps" ]; do
  echo "entry $i of $steps" >&3
  sleep "$delay"
  i=$((i + 1))
done
exec 3>&-
echo "journal done: $(wc -l < journal.txt) entries, sha256 $(sha256sum < journal.txt | cut -c1-64)"
