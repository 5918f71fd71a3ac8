#!/usr/bin/env bash
# Runs the benchmark on a many-core host without Docker or Node: `pack` here (the task image's bundle), `run` there (test/bench/host-bench.ts).
#
#   test/bench/device-bench.sh pack
#       Copies /opt/spotsnap out of the task image (npm run images builds it) and packs it into
#       .device/spotsnap-bundle.tar.xz (about 32 MB), which .git/info/exclude keeps out of git. Send the
#       checkout with .device to the other machine (the device tool: carry [".device"]).
#   test/bench/device-bench.sh run [--size MIB[,MIB...]] [--kind random|text] [--checkpoint-only]
#       On that machine, as root: unpacks the bundle to /opt/spotsnap (where its wrappers expect it) and runs
#       the host benchmark with the bundle's own Node. The figures go to results/host-bench.{json,md} after
#       each case, and to $OUT too when it is set; each attempt's output to results/host-bench-logs/ (or
#       $OUT/host-bench-logs/). The device tool allows 600 s a command: one size and one kind per call
#       (--size 16384 --kind random) fits. --checkpoint-only measures the plain upload and the first
#       checkpoint alone, against a stand-in that checks and drops the packs, for a task too big to hold
#       beside its snapshot (--size 65536 on a 128 GiB host), into results/host-bench-checkpoint.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/../.."
packed=.device/spotsnap-bundle.tar.xz

case "${1:-}" in
pack)
  image=spotsnap:dev
  docker image inspect "$image" >/dev/null 2>&1 || { echo "device-bench: no $image image here: build it first (npm run images)" >&2; exit 1; }
  mkdir -p .device
  grep -qxF '.device/' .git/info/exclude 2>/dev/null || echo '.device/' >>.git/info/exclude
  staging=$(mktemp -d)
  trap 'rm -rf "$staging"; docker rm -f spotsnap-device-bundle >/dev/null 2>&1 || true' EXIT
  docker create --name spotsnap-device-bundle "$image" >/dev/null
  docker cp spotsnap-device-bundle:/opt/spotsnap "$staging/spotsnap"
  tar -C "$staging" -cf - spotsnap | xz -T0 -6 >"$packed.partial"
  mv "$packed.partial" "$packed"
  echo "device-bench: packed $(du -h "$packed" | cut -f1) into $packed; send the checkout with carry [\".device\"] and run: test/bench/device-bench.sh run --size 16384"
  ;;
run)
  shift
  [[ $(id -u) == 0 ]] || { echo "device-bench: run it as root (CRIU dumps and restores the task)" >&2; exit 1; }
  if [[ -f $packed ]]; then
    command -v xz >/dev/null 2>&1 || { echo "device-bench: this host has no xz to unpack $packed" >&2; exit 1; }
    rm -rf /opt/spotsnap
    mkdir -p /opt
    xz -dc "$packed" | tar -C /opt -xf -
  elif [[ ! -x /opt/spotsnap/bin/spotsnap ]]; then
    echo "device-bench: neither $packed nor /opt/spotsnap is here: run 'test/bench/device-bench.sh pack' where the task image is" >&2
    exit 1
  fi
  # The bundle brings Node, CRIU and unshare; the host brings the rest.
  for tool in python3 mount umount; do
    command -v "$tool" >/dev/null 2>&1 || { echo "device-bench: this host has no $tool, which the benchmark needs" >&2; exit 1; }
  done
  # The figures after each case, and each attempt's output, go to $OUT as well when it is set (host-bench.ts).
  exec /opt/spotsnap/bin/node test/bench/host-bench.ts "$@"
  ;;
*)
  echo "usage: test/bench/device-bench.sh pack | run [--size MIB[,MIB...]] [--kind random|text] [--checkpoint-only]" >&2
  exit 64
  ;;
esac
