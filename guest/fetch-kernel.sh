#!/bin/sh
# fetch-kernel.sh — fetches Debian's generic amd64 kernel package and lays out the guest
# kernel (OUTDIR/vmlinuz, and OUTDIR/vmlinux: the same kernel as an uncompressed ELF that
# QEMU boots through PVH, ~2.5 s faster under TCG) plus the few modules the agent loads (OUTDIR/modules/, with order).
#
# usage: fetch-kernel.sh OUTDIR
# Works as root or as a normal user; never touches the host's /boot. Idempotent: the .deb
# is cached in OUTDIR/cache and reused. Fails loudly (non-zero exit, message on stderr).
set -eu

die() { echo "fetch-kernel.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: fetch-kernel.sh OUTDIR"
OUT=$1
mkdir -p "$OUT/cache"
OUT=$(cd "$OUT" && pwd)
CACHE=$OUT/cache

# Modules the guest needs (names as in modules.dep, '-' and '_' equivalent). The first
# group is required when built as modules (crc32c_generic: ext4's softdep, needed for
# metadata_csum since the guest has no modprobe); the rest are for later features.
REQUIRED="virtio_mmio virtio_blk virtio_console crc32c_generic ext4"
OPTIONAL="9p 9pnet 9pnet_virtio netfs fscache virtio_net failover net_failover virtio_balloon"

for tool in apt-cache apt-get dpkg-deb awk sed sort; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done

# Resolve the concrete package behind the linux-image-amd64 metapackage. A version
# may be forced with BOXLITE_KERNEL_PKG=linux-image-6.1.0-NN-amd64.
resolve_pkg() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1
}

PKG=${BOXLITE_KERNEL_PKG:-}
if [ -z "$PKG" ]; then
    PKG=$(resolve_pkg)
fi
if [ -z "$PKG" ]; then
    # No cached package lists at all: reuse whatever .deb is already in the cache.
    PKG=$(ls "$CACHE" 2>/dev/null | sed -n 's/^\(linux-image-[0-9][^_]*-amd64\)_.*\.deb$/\1/p' | sort -V | tail -n 1)
fi
[ -n "$PKG" ] || die "cannot resolve linux-image-amd64 (run apt-get update?)"

find_deb() {
    ls "$CACHE"/"${PKG}"_*_amd64.deb 2>/dev/null | sort -V | tail -n 1
}

DEB=$(find_deb || true)
if [ -z "$DEB" ]; then
    # apt-get download writes into the current directory and works unprivileged.
    if ! (cd "$CACHE" && apt-get download "$PKG") >&2; then
        echo "fetch-kernel.sh: apt-get download failed; refreshing package lists" >&2
        apt-get update >&2 || die "apt-get update failed (are you root? lists missing?)"
        (cd "$CACHE" && apt-get download "$PKG") >&2 || die "apt-get download $PKG failed"
    fi
    DEB=$(find_deb || true)
fi
[ -n "$DEB" ] && [ -s "$DEB" ] || die "no .deb for $PKG in $CACHE"

# Extract into a scratch tree (removed on exit: it is ~400 MB and quick to redo).
EXTRACT=$CACHE/extract
rm -rf "$EXTRACT"
trap 'rm -rf "$EXTRACT"' EXIT INT TERM
mkdir -p "$EXTRACT"
dpkg-deb -x "$DEB" "$EXTRACT" || die "dpkg-deb -x $DEB failed"

KVER=$(ls "$EXTRACT/lib/modules" | head -n 1)
[ -n "$KVER" ] || die "no lib/modules/<version> in $DEB"
MODROOT=$EXTRACT/lib/modules/$KVER
VMLINUZ=$EXTRACT/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || die "no boot/vmlinuz-$KVER in $DEB"
# Debian generates modules.dep at install time (depmod); do it here, on our copy.
if [ ! -s "$MODROOT/modules.dep" ]; then
    DEPMOD=$(command -v depmod || echo /sbin/depmod)
    [ -x "$DEPMOD" ] || DEPMOD=/usr/sbin/depmod
    [ -x "$DEPMOD" ] || die "depmod not found (install kmod)"
    "$DEPMOD" -b "$EXTRACT" "$KVER" || die "depmod -b $EXTRACT $KVER failed"
fi
[ -s "$MODROOT/modules.dep" ] || die "no modules.dep for $KVER"
BUILTIN=$MODROOT/modules.builtin

# Resolve the wanted modules against modules.dep, dependencies first. Prints
# "path" lines (relative to MODROOT); a module that is built in prints nothing;
# an unknown required module is an error, an unknown optional one is skipped.
resolve_modules() {
    awk -v req="$REQUIRED" -v opt="$OPTIONAL" -v builtin="$BUILTIN" '
    function norm(s) { gsub(/-/, "_", s); return s }
    function modname(path,   n) {
        n = path; sub(/.*\//, "", n); sub(/\.ko(\.(xz|zst|gz))?$/, "", n); return norm(n)
    }
    function visit(name,   path, n, i, d) {
        if (name in done) return
        done[name] = 1
        path = bypath[name]
        n = split(deps[name], d, " ")
        for (i = 1; i <= n; i++) visit(modname(d[i]))
        print path
    }
    BEGIN {
        while ((getline line < builtin) > 0) isbuiltin[modname(line)] = 1
    }
    {
        p = $1; sub(/:$/, "", p)
        name = modname(p)
        bypath[name] = p
        $1 = ""; deps[name] = $0
    }
    END {
        nr = split(req, r, " ")
        for (i = 1; i <= nr; i++) {
            w = norm(r[i])
            if (w in bypath) visit(w)
            else if (!(w in isbuiltin)) { print "ERROR missing required module " w; exit 1 }
        }
        no = split(opt, o, " ")
        for (i = 1; i <= no; i++) {
            w = norm(o[i])
            if (w in bypath) visit(w)
        }
    }' "$MODROOT/modules.dep"
}

LIST=$(resolve_modules) || die "module resolution failed: $LIST"
case "$LIST" in *ERROR*) die "$LIST" ;; esac

decompress() { # src dst
    case "$1" in
    *.ko.xz) xz -dc "$1" >"$2" ;;
    *.ko.zst) zstd -q -dc "$1" >"$2" ;;
    *.ko.gz) gzip -dc "$1" >"$2" ;;
    *.ko) cp "$1" "$2" ;;
    *) return 1 ;;
    esac
}

rm -rf "$OUT/modules.tmp"
mkdir -p "$OUT/modules.tmp"
: >"$OUT/modules.tmp/order"
for rel in $LIST; do
    base=$(basename "$rel")
    ko=${base%.xz}
    ko=${ko%.zst}
    ko=${ko%.gz}
    decompress "$MODROOT/$rel" "$OUT/modules.tmp/$ko" || die "cannot decompress $rel"
    echo "$ko" >>"$OUT/modules.tmp/order"
done
rm -rf "$OUT/modules"
mv "$OUT/modules.tmp" "$OUT/modules"

# The bzImage's payload is a compressed ELF (xz on Debian); find it by its magic, as the
# kernel's scripts/extract-vmlinux does, and keep the first candidate that is an ELF.
extract_vmlinux() { # bzimage out
    for spec in '\3757zXZ\000:xz -dc' '\050\265\057\375:zstd -q -dc' '\037\213\010:gzip -dc'; do
        magic=$(printf "${spec%%:*}")
        cmd=${spec#*:}
        for pos in $(LC_ALL=C grep -obUaF "$magic" "$1" 2>/dev/null | cut -d: -f1); do
            tail -c +$((pos + 1)) "$1" | $cmd >"$2" 2>/dev/null || true
            if [ "$(head -c 4 "$2" | od -An -c | tr -d ' ')" = '177ELF' ]; then
                return 0
            fi
        done
    done
    return 1
}
extract_vmlinux "$VMLINUZ" "$OUT/vmlinux.tmp" || die "cannot extract an ELF vmlinux from $VMLINUZ"
mv "$OUT/vmlinux.tmp" "$OUT/vmlinux"

cp "$VMLINUZ" "$OUT/vmlinuz.tmp"
mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
echo "$KVER" >"$OUT/kernel-version"
echo "fetch-kernel.sh: $PKG ($KVER): $(wc -l <"$OUT/modules/order") modules" >&2
