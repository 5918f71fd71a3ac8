#!/bin/bash
# Test task: starts a task the way Nextflow's AWS Batch executor does: fetch the task's .command.run from the
# (stand-in) bucket, run it through tee into .command.log, and put the log back in the bucket on exit.
# The bucket here is a directory that comes with the image (inputs, scripts) plus /var/tmp/bucket for results.
set -o pipefail
remote=/opt/spotsnap-tests/nextflow/remote
bucket=/var/tmp/bucket
echo "task started: nextflow-style wrapper in $PWD"
mkdir -p "$bucket/work"
trap 'ret=$?; cp .command.log "$bucket/work/.command.log" 2>/dev/null || true; exit $ret' EXIT
# Nextflow's launcher also merges the wrapper's stderr into .command.log (2>&1); here the task's stderr stays
# on stderr, so that the container's stdout is the task's stdout only, in a deterministic order.
cat "$remote/.command.run" > .command.run
bash .command.run | tee .command.log
status=$?
echo "wrapper exited $status; published: $(cd "$bucket/results" && sha256sum -- * .exitcode | sha256sum | cut -c1-64)"
echo "published files: $(cd "$bucket/results" && ls -A | tr '\n' ' ')"
exit "$status"
