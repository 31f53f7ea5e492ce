#!/usr/bin/env bash
# mkroot.sh — a bare Debian bookworm root for the fresh-machine test: minbase + python3 +
# python3-pip and nothing else (no QEMU, no compiler, no busybox, no build tree), made by
# mmdebstrap from the archive apt already uses. Cached as a tarball outside the work tree,
# keyed by the package list and this script, so CI builds it once per machine:
#   ${BOXLITE_ROOTFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boxlite/rootfs}/<key>.tar
# Prints the tarball's path.
set -euo pipefail

SUITE=bookworm
INCLUDE=python3,python3-pip
MIRROR=${BOXLITE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${BOXLITE_ROOTFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boxlite/rootfs}
key=$( { echo "$SUITE minbase $INCLUDE $MIRROR"; cat "$0"; } | sha256sum | cut -c1-16)
tar=$CACHE/$SUITE-$key.tar
if [ ! -f "$tar" ]; then
  mkdir -p "$CACHE"
  start=$(date +%s)
  tmp=$CACHE/.partial-$key.tar # mmdebstrap picks the output format by the name's suffix
  mmdebstrap --quiet --variant=minbase --include="$INCLUDE" "$SUITE" "$tmp" "$MIRROR" >&2
  mv "$tmp" "$tar"
  echo "mkroot: built $tar in $(($(date +%s) - start)) s" >&2
fi
echo "$tar"
