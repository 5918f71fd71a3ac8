#!/usr/bin/env bash
# Builds task images of other kinds (Debian 12, a distroless-style glibc image, a busybox-only image with no
# libc at all) that take spotsnap with the two Dockerfile lines of the README, for the drop-in tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
mirror="${SPOTSNAP_DEBIAN_MIRROR:-$("$repo/docker/debian-mirror.sh")}"
work=$(mktemp -d /tmp/spotsnap-foreign.XXXXXX)
trap 'rm -rf "$work"' EXIT

have() { docker image inspect "$1" >/dev/null 2>&1; }

# The busybox packages of this machine's Debian release, as a source of a shell and tools.
fetch_busybox() {
  (cd "$work" && apt-get download busybox busybox-static >/dev/null 2>&1) || {
    apt-get update -qq >/dev/null && (cd "$work" && apt-get download busybox busybox-static >/dev/null)
  }
  dpkg-deb -x "$work"/busybox_*.deb "$work/busybox-dynamic"
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/busybox-static"
}

# A root with busybox at /bin/busybox and a link for each of its applets.
busybox_root() {
  local root="$1" binary="$2"
  mkdir -p "$root/bin" "$root/tmp" "$root/work" "$root/proc" "$root/sys" "$root/dev" "$root/etc"
  chmod 1777 "$root/tmp"
  cp "$binary" "$root/bin/busybox"
  for applet in $("$work/busybox-static/bin/busybox" --list-full); do
    mkdir -p "$root/$(dirname "$applet")"
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done
}

if ! have spotsnap-foreign-bookworm:base; then
  echo "build-foreign-images: Debian 12 (debootstrap)"
  debootstrap --variant=minbase bookworm "$work/bookworm" "$mirror" >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  tar -C "$work/bookworm" -c . | docker import - spotsnap-foreign-bookworm:base >/dev/null
fi
if ! have spotsnap-foreign-distroless:base || ! have spotsnap-foreign-busybox:base; then
  fetch_busybox
  echo "build-foreign-images: distroless-style glibc image (glibc, dynamic busybox, no package manager)"
  busybox_root "$work/distroless" "$work/busybox-dynamic/bin/busybox"
  mkdir -p "$work/distroless/lib/x86_64-linux-gnu" "$work/distroless/lib64"
  for library in $(ldd "$work/busybox-dynamic/bin/busybox" | awk '/=> \// { print $3 }'); do cp -L "$library" "$work/distroless/lib/x86_64-linux-gnu/"; done
  cp -L /lib64/ld-linux-x86-64.so.2 "$work/distroless/lib64/"
  tar -C "$work/distroless" -c . | docker import - spotsnap-foreign-distroless:base >/dev/null
  echo "build-foreign-images: busybox-only image (static busybox, no libc)"
  busybox_root "$work/busybox" "$work/busybox-static/bin/busybox"
  tar -C "$work/busybox" -c . | docker import - spotsnap-foreign-busybox:base >/dev/null
fi

# Each takes spotsnap exactly as a user's Dockerfile would.
for kind in bookworm distroless busybox; do
  mkdir -p "$work/context-$kind"
  cat > "$work/context-$kind/Dockerfile" <<DOCKERFILE
FROM spotsnap-foreign-$kind:base
COPY --from=spotsnap:dev /opt/spotsnap /opt/spotsnap
ENTRYPOINT ["/opt/spotsnap/bin/spotsnap", "run", "--"]
WORKDIR /work
DOCKERFILE
  docker build -q -t "spotsnap-foreign-$kind:dev" "$work/context-$kind" >/dev/null
done
echo "build-foreign-images: done"
