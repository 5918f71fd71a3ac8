#!/usr/bin/env bash
# Prints the Debian mirror this machine's apt sources name (so no host is written into the project).
set -euo pipefail
mirror=$(grep -hoE '^(URIs:|deb)\s+\S+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
  | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
if [[ -z "$mirror" ]]; then
  echo "debian-mirror: no Debian mirror found in /etc/apt/sources.list*; set SPOTSNAP_DEBIAN_MIRROR" >&2
  exit 1
fi
echo "${mirror%/}"
