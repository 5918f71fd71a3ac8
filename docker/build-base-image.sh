#!/usr/bin/env bash
# Builds the local Debian 13 base image (spotsnap-base:trixie) with debootstrap, for machines that cannot pull images.
set -euo pipefail
image="${1:-spotsnap-base:trixie}"
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "build-base-image: $image already present"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  echo "build-base-image: debootstrap is not installed (apt-get install debootstrap)" >&2
  exit 1
fi
mirror="${SPOTSNAP_DEBIAN_MIRROR:-$("$(dirname "$0")/debian-mirror.sh")}"
root=$(mktemp -d /tmp/spotsnap-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "build-base-image: debootstrap trixie into $root"
debootstrap --variant=minbase --include=criu,ca-certificates trixie "$root" "$mirror" >/tmp/spotsnap-debootstrap.log 2>&1 \
  || { tail -n 30 /tmp/spotsnap-debootstrap.log >&2; exit 1; }
# apt inside the image uses the same mirror the root was made from.
echo "deb $mirror trixie main" > "$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import - "$image" >/dev/null
echo "build-base-image: $image ready"
