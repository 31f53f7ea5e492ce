#!/usr/bin/env bash
# build-wheel.sh — `make wheel`: dist/boxlite-<version>-<tags>.whl, one self-contained
# package. It is the Python package of ./python (boxlite._core, libboxlite linked in) plus,
# under boxlite/:
#   libexec/  boxlite (the C CLI), boxlite-serve (its `serve`), boxlite-shim, qemu-system-x86_64,
#             qemu-img
#   lib/      libboxlite.so.MAJOR (the CLI's) and every shared library these load that a bare
#             Debian lacks (scripts/bundle-libs.sh; run paths $ORIGIN-relative)
#   share/boxlite/  the guest kernel, initramfs and default image
#   share/qemu/     bios-microvm.bin (qboot)
# The library finds all of it relative to itself (src/lib/runtime.c). QEMU comes from
# scripts/build-qemu.sh and a static libarchive without xar (so without libxml2 and ICU) from
# scripts/build-libarchive.sh, both cached outside the work tree. The extension, libboxlite,
# the CLI and the shim are built against that libarchive in a meson build dir of their own,
# $BUILD/wheel-host (the guest files come from $BUILD). Python packaging: Debian's
# python3-setuptools and python3-wheel, offline.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath "${BUILD:-$ROOT/build}")
PYTHON=${PYTHON:-/usr/bin/python3}
DIST=${DIST:-$ROOT/dist}
WORK=$BUILD/wheel
HOST=$BUILD/wheel-host

# BOXLITE_QEMU_DIR: a build-qemu.sh output directory to use as it is (skips the cache check)
qemu=${BOXLITE_QEMU_DIR:-$("$ROOT/scripts/build-qemu.sh" | tail -1)}
libarchive=$("$ROOT/scripts/build-libarchive.sh" | tail -1)
ninja -C "$BUILD" >&2
rm -rf "$WORK" && mkdir -p "$WORK"

# 1. the host programs and libboxlite against the wheel's libarchive (a new one: a new dir)
if [ "$(cat "$HOST/.libarchive" 2>/dev/null)" != "$libarchive" ]; then
  rm -rf "$HOST"
  meson setup "$HOST" "$ROOT" -Dwerror=true -Dguest=false -Dfault_injection=false \
    --pkg-config-path="$libarchive/lib/pkgconfig" >&2
  echo "$libarchive" > "$HOST/.libarchive"
fi
# (the CLI brings libboxlite.so)
ninja -C "$HOST" src/lib/libboxlite.a src/cli/boxlite src/cli/boxlite-serve src/shim/boxlite-shim >&2

# 2. the plain wheel of ./python: the extension, linked against that libboxlite.a
rm -rf "$ROOT/python/build"
PKG_CONFIG_PATH=$libarchive/lib/pkgconfig BOXLITE_BUILD=$HOST "$PYTHON" -m pip wheel -q \
  --no-build-isolation --no-index --no-deps -w "$WORK/plain" "$ROOT/python" >&2
rm -rf "$ROOT/python/build"
plain=$(ls "$WORK"/plain/boxlite-*.whl)
"$PYTHON" -m wheel unpack -d "$WORK/tree" "$plain" >&2
tree=$(ls -d "$WORK"/tree/boxlite-*)
pkg=$tree/boxlite

# 3. what it carries
install -d "$pkg/libexec" "$pkg/lib" "$pkg/share/boxlite" "$pkg/share/qemu"
install -m 0755 "$HOST/src/shim/boxlite-shim" "$HOST/src/cli/boxlite" "$HOST/src/cli/boxlite-serve" \
  "$qemu"/bin/* "$pkg/libexec/"
# the soname the CLI was linked against (libboxlite.so.MAJOR), read from the library itself
soname=$(objdump -p "$HOST/src/lib/libboxlite.so" | awk '$1 == "SONAME" {print $2}')
[ -n "$soname" ] || { echo "build-wheel: no SONAME in $HOST/src/lib/libboxlite.so" >&2; exit 1; }
install -m 0755 "$(realpath "$HOST/src/lib/$soname")" "$pkg/lib/$soname"
install -m 0644 "$qemu"/lib/* "$pkg/lib/"
install -m 0644 "$qemu"/share/qemu/* "$pkg/share/qemu/"
for f in vmlinux initramfs.cpio.gz default.ext4.sha256 kernel-version; do
  install -m 0644 "$BUILD/guest/$f" "$pkg/share/boxlite/"
done
# a zip keeps no holes: the sparse 512 MiB default image ships compressed and is inflated
# (sparse, checked against default.ext4.sha256) into the store on first use
gzip -6 -n -c "$BUILD/guest/default.ext4" > "$pkg/share/boxlite/default.ext4.gz"
chmod 0644 "$pkg/share/boxlite/default.ext4.gz"
strip --strip-unneeded "$pkg"/_core*.so "$pkg/lib/$soname" \
  "$pkg/libexec/boxlite" "$pkg/libexec/boxlite-serve" "$pkg/libexec/boxlite-shim"

# 4. their libraries, with run paths relative to where they are
"$ROOT/scripts/bundle-libs.sh" "$pkg/lib" '$ORIGIN' "$pkg/lib/$soname"
"$ROOT/scripts/bundle-libs.sh" "$pkg/lib" '$ORIGIN/lib' "$pkg"/_core*.so
"$ROOT/scripts/bundle-libs.sh" "$pkg/lib" '$ORIGIN/../lib' "$pkg/libexec/boxlite" \
  "$pkg/libexec/boxlite-serve" "$pkg/libexec/boxlite-shim"
# libcurl is loaded when the first registry is opened (src/lib/image/curl_lazy.c), not
# linked, so no ldd above names it: carry it and what it loads, found through the run paths
curl=$(ldconfig -p | awk '$1 == "libcurl.so.4" && /x86-64/ { print $NF; exit }')
[ -n "$curl" ] || { echo "build-wheel: libcurl.so.4 not found (ldconfig -p)" >&2; exit 1; }
install -m 0644 "$(realpath "$curl")" "$pkg/lib/libcurl.so.4"
strip --strip-unneeded "$pkg/lib/libcurl.so.4"
"$ROOT/scripts/bundle-libs.sh" "$pkg/lib" '$ORIGIN' "$pkg/lib/libcurl.so.4"
# libarchive is linked in: Debian's (and its libxml2 and ICU) must not have come along
if ls "$pkg/lib" | grep -E '^lib(archive|xml2|icu)'; then
  echo "build-wheel: a shared libarchive, libxml2 or ICU was bundled (see above)" >&2
  exit 1
fi

mkdir -p "$DIST"
"$PYTHON" -m wheel pack -d "$DIST" "$tree" >&2
whl=$(ls -t "$DIST"/boxlite-*.whl | head -1)
echo "build-wheel: $whl: $(($(stat -c %s "$whl") / 1024)) KiB; compressed sizes (KiB):" >&2
"$PYTHON" - "$whl" >&2 <<'PY'
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
groups = {}
for i in z.infolist():
    parts = i.filename.split("/")
    key = "/".join(parts[:3]) if parts[1:2] in (["share"], ["libexec"]) else "/".join(parts[:2])
    groups[key] = groups.get(key, 0) + i.compress_size
for k, v in sorted(groups.items(), key=lambda kv: -kv[1])[:14]:
    print(f"  {v // 1024:8d}  {k}")
PY
echo "$whl"
