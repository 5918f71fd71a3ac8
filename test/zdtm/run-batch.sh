#!/bin/sh
# Runs zdtm static tests as one spotsnap task: starts each, waits for the stop file, sends SIGTERM, prints PASS or FAIL.
# Usage: run-batch.sh NAME:HOW ... (HOW as in tests.txt). The stop file comes only with a later attempt's fresh
# container (the test copies it in), so a first attempt waits until it is checkpointed and never reports a result.
set -u
bin=${ZDTM_BIN:-/opt/zdtm/static}
stop_file=${ZDTM_STOP_FILE:-/etc/spotsnap-test/zdtm-stop}
# How long one test may take to end after its SIGTERM, in tenths of a second.
end_limit=${ZDTM_END_LIMIT:-600}
top=$PWD/zdtm

[ $# -gt 0 ] || { echo "run-batch: name the tests to run, as NAME:HOW (HOW: nofile, file, dir, dirfile, special)" >&2; exit 2; }
mkdir -p "$top" || exit 2

# Starts one test in its own directory as CRIU's test/zdtm/static/Makefile starts it (its NAME.pid rule).
start_one() {
  name=$1 how=$2
  mkdir "$top/$name" && cd "$top/$name" || return 1
  case $how in
    nofile) set -- ;;
    file) set -- --filename="$name.test" ;;
    dir) set -- --dirname="$name.test" ;;
    dirfile) set -- --dirname="$name.dir.test" --filename="$name.test" ;;
    special)
      case $name in
        env00) set -- --envname=ENV_00_TEST ;;
        umask00) set -- --mask=0345 ;;
        cmdlinenv00) set -- --arg1=arg1 --arg2=arg2 --arg3=arg3 ;;
        fifo-rowo-pair) set -- --name_master="$name.master.test" --name_slave="$name.slave.test" ;;
        shm-unaligned) set -- --shmem_size=5000 ;;
        *) echo "run-batch: $name has no rule of its own here" >&2; return 1 ;;
      esac ;;
    *) echo "run-batch: unknown way to start $name: $how" >&2; return 1 ;;
  esac
  # The test daemonizes: this returns once it has set its state up and written its pidfile.
  "$bin/$name" --pidfile="$name.pid" --outfile="$name.out" "$@"
}

echo "zdtm batch started: $*"
names=""
for spec in "$@"; do
  name=${spec%%:*}
  names="$names $name"
  ( start_one "$name" "${spec#*:}" ) &
done
wait
for name in $names; do
  [ -s "$top/$name/$name.pid" ] || echo "zdtm $name: did not start"
done
echo "zdtm batch ready"

# Waits for the stop file (only a later attempt's container has it).
while [ ! -e "$stop_file" ]; do sleep 0.2; done
echo "zdtm batch stopping"

for name in $names; do
  pidfile="$top/$name/$name.pid"
  [ -s "$pidfile" ] && kill -TERM "$(cat "$pidfile")"
done

passed=0 failed=0
for name in $names; do
  dir="$top/$name" out="$top/$name/$name.out"
  # The test renames NAME.out.inprogress to NAME.out as it exits.
  n=0
  while [ ! -e "$out" ] && [ -e "$dir/$name.pid" ] && [ $n -lt "$end_limit" ]; do sleep 0.1; n=$((n + 1)); done
  [ -e "$out" ] || out="$out.inprogress"
  if [ -e "$out" ] && tr -s ' \t' '\n\n' < "$out" | grep -qx PASS; then
    echo "zdtm $name: PASS"; passed=$((passed + 1))
  else
    echo "zdtm $name: FAIL"; failed=$((failed + 1))
    [ -e "$out" ] && sed "s/^/  $name| /" "$out"
  fi
done
echo "zdtm batch done: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
