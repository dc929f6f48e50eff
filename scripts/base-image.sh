#!/usr/bin/env bash
# Build, once, an offline stand-in for python:3.11-slim (no image can be pulled here):
# Debian bookworm minbase + Debian's Python 3.11 and pip, shaped like the official image
# (`python` and `python3` on PATH, pip usable, no PEP 668 marker). Reused when present.
# Usage: scripts/base-image.sh [NAME]   (default shipml-test/python:3.11-slim)
set -euo pipefail
name=${1:-shipml-test/python:3.11-slim}

if docker image inspect "$name" >/dev/null 2>&1; then
  echo "base-image: $name (cached)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
command -v debootstrap >/dev/null 2>&1 || {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}
# Use the machine's own Debian mirror, as configured for apt.
mirror=$(grep -hoE '^(URIs:|deb) *[a-z]+://[^ ]+/debian/?( |$)' \
  /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
  | head -n 1 | awk '{print $2}' || true)
mirror=${mirror:?could not find a Debian mirror in the apt configuration}
rootfs=$(mktemp -d /tmp/shipml-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
started=$(date +%s)
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/tmp/shipml-debootstrap.log 2>&1 || {
  tail -n 20 /tmp/shipml-debootstrap.log >&2; exit 1; }
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" apt-get install -y -qq --no-install-recommends \
  python3 python3-pip python3-venv ca-certificates >>/tmp/shipml-debootstrap.log 2>&1
chroot "$rootfs" sh -c '
  ln -sf /usr/bin/python3 /usr/local/bin/python
  rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
         /usr/share/locale/* /var/log/* /tmp/*
  find /usr/lib/python3* -name __pycache__ -type d -prune -exec rm -rf {} +
'
: > "$rootfs/etc/resolv.conf"
tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' - "$name" >/dev/null
size=$(docker image inspect "$name" --format '{{.Size}}')
echo "base-image: $name built in $(( $(date +%s) - started )) s, $(( size / 1000000 )) MB"
