#!/usr/bin/env bash
# Builds every image the demo and the tests use: the Debian 13 base, the S3 emulator and the spotsnap task image.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
base="${SPOTSNAP_BASE_IMAGE:-spotsnap-base:trixie}"
node_bin="$root/node_modules/node/bin/node"

if [[ "$base" == "spotsnap-base:trixie" ]]; then "$here/build-base-image.sh" "$base"; fi

[[ -x "$node_bin" ]] || { echo "build-images: $node_bin is missing: run npm ci first" >&2; exit 1; }
"$node_bin" "$here/bundle-agent.ts"

context="$root/dist/image-context"
rm -rf "$context" && mkdir -p "$context"
cp "$here/Dockerfile" "$here/spotsnap" "$here/spotsnap-start.mjs" "$here/make-bundle.sh" "$root/dist/spotsnap.mjs" "$root/dist/chunk-worker.mjs" "$root/criu-bridge/image-stream-relay.c" "$context/"
cp -r "$here/sample-tasks" "$context/sample-tasks"
cp -r "$root/dist/native" "$context/native"
# The runtime's debug symbols are not needed in the image.
if command -v strip >/dev/null; then strip -o "$context/node" "$node_bin"; else cp "$node_bin" "$context/node"; fi

# Builds quietly; on failure shows what docker said.
build() {
  local tag="$1"; shift
  local log; log="$(mktemp)"
  echo "build-images: $tag"
  if ! docker build --network host --build-arg "BASE_IMAGE=$base" -t "$tag" "$@" >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"
    echo "build-images: building $tag failed" >&2
    exit 1
  fi
  rm -f "$log"
}
build spotsnap-s3:dev -f "$root/localstack/s3-emulator.Dockerfile" "$root/localstack"
build spotsnap:dev "$context"
# Test images for the task shapes of test/e2e/pipeline-shapes.test.ts (test/tasks): their package layers come from
# the base image and stay cached; only the layer taking /opt/spotsnap from spotsnap:dev follows a new agent.
build spotsnap-py:dev -f "$root/test/images/py.Dockerfile" "$root/test/tasks"
build spotsnap-jvm:dev -f "$root/test/images/jvm.Dockerfile" "$root/test/tasks"
# CRIU's zdtm static tests for test/e2e/zdtm.test.ts, built from Debian's criu source package (test/zdtm/tests.txt).
build spotsnap-zdtm:dev -f "$root/test/images/zdtm.Dockerfile" "$root/test/zdtm"
echo "build-images: done"
