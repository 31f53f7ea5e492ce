#!/bin/sh
# mk-initramfs.sh — packs the guest initramfs: the static agent as /init, the kernel
# modules from fetch-kernel.sh with their load order, and the empty mount points.
#
# usage: mk-initramfs.sh AGENT KERNELDIR OUT
# Writes a gzip'd newc cpio to OUT (via OUT.tmp + rename). No root needed: everything in
# the archive is owned by 0:0.
set -eu

die() { echo "mk-initramfs.sh: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: mk-initramfs.sh AGENT KERNELDIR OUT"
AGENT=$1
KDIR=$2
OUT=$3

[ -f "$AGENT" ] || die "no agent binary at $AGENT"
[ -f "$KDIR/modules/order" ] || die "no $KDIR/modules/order (run fetch-kernel.sh)"
command -v cpio >/dev/null 2>&1 || die "missing tool: cpio"
command -v gzip >/dev/null 2>&1 || die "missing tool: gzip"

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/boxlite-initramfs.XXXXXX")
trap 'rm -rf "$STAGE" "$STAGE.cpio"' EXIT INT TERM

mkdir -p "$STAGE/proc" "$STAGE/sys" "$STAGE/dev" "$STAGE/rootfs" "$STAGE/lib/modules"
cp "$AGENT" "$STAGE/init"
chmod 0755 "$STAGE/init"
while IFS= read -r ko; do
    [ -n "$ko" ] || continue
    [ -f "$KDIR/modules/$ko" ] || die "module $ko listed in order but missing"
    cp "$KDIR/modules/$ko" "$STAGE/lib/modules/$ko"
done <"$KDIR/modules/order"
cp "$KDIR/modules/order" "$STAGE/lib/modules/order"

# Fixed timestamps and sorted names keep the archive reproducible.
find "$STAGE" -exec touch -h -d @0 {} + 2>/dev/null || true
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc --owner 0:0 --reproducible --quiet) >"$STAGE.cpio" || die "cpio failed"
gzip -9n <"$STAGE.cpio" >"$OUT.tmp" || die "gzip failed"
rm -f "$STAGE.cpio"
mv "$OUT.tmp" "$OUT"
