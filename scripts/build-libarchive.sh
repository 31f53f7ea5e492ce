#!/usr/bin/env bash
# build-libarchive.sh — the static libarchive the wheel links (scripts/build-wheel.sh), from
# Debian's libarchive source package (apt's deb-src, scripts/debsrc.sh, as for QEMU;
# no other download), with Debian's patches, configured for what src/lib uses and nothing else:
# reading tar (layers, imports, copies, .boxlite archives) and raw (the wheel's default.ext4.gz),
# writing pax, the gzip (zlib) and zstd filters, xattrs. No xar (libxml2, and through it ICU:
# about a third of the wheel with Debian's libarchive), no xz, lz4, bzip2, crypto or ACLs,
# no bsdtar/bsdcpio/bsdcat. The normal `make build` keeps Debian's shared libarchive.
#
# The result is cached outside the work tree, in
#   ${BOXLITE_LIBARCHIVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boxlite/libarchive}/<key>/
# key = source version + hash(configure flags, this script, debsrc.sh), like the QEMU cache. Layout:
#   include/archive.h include/archive_entry.h
#   lib/libarchive.a (PIC)  lib/pkgconfig/libarchive.pc (static only: Libs names the .a and
#   -lzstd -lz)
# Prints the cache directory on stdout (last line); progress and the build time on stderr.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
JOBS=${JOBS:-2}
CACHE=${BOXLITE_LIBARCHIVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boxlite/libarchive}

CONFIGURE_FLAGS=(
  --prefix=/usr --disable-shared --enable-static --with-pic
  --disable-bsdtar --disable-bsdcpio --disable-bsdcat
  --with-zlib --with-zstd --enable-xattr --disable-acl
  --without-xml2 --without-expat --without-openssl --without-nettle --without-mbedtls
  --without-cng --without-lzma --without-lz4 --without-bz2lib --without-libb2 --without-lzo2
)
# what configure must have found (it drops a missing library silently)
REQUIRED_DEFINES=(HAVE_ZLIB_H HAVE_ZSTD_H)
# Debian's patches touch configure.ac and Makefile.am: autoreconf, as debian/rules does
BUILD_DEPS=(build-essential pkg-config dpkg-dev autoconf automake libtool zlib1g-dev libzstd-dev)

die() { echo "build-libarchive: $*" >&2; exit 1; }

. "$HERE/debsrc.sh"

WORK=
cleanup() { [ -z "$WORK" ] || rm -rf "$WORK"; }
trap cleanup EXIT

build() {
  local ver=$1 dest=$2 work d
  work=$(mktemp -d "$CACHE/.build.XXXXXX")
  WORK=$work
  debsrc_extract libarchive "$ver" "$work/src"
  (cd "$work/src" && autoreconf -fi >&2)
  mkdir -p "$work/build"
  (cd "$work/build" && ../src/configure "${CONFIGURE_FLAGS[@]}" >&2)
  for d in "${REQUIRED_DEFINES[@]}"; do
    grep -q "^#define $d 1" "$work/build/config.h" || die "configure did not find $d"
  done
  make -C "$work/build" -j"$JOBS" libarchive.la >&2
  install -D -m 0644 "$work/build/.libs/libarchive.a" "$work/stage/lib/libarchive.a"
  install -D -m 0644 -t "$work/stage/include" "$work/src/libarchive/archive.h" \
    "$work/src/libarchive/archive_entry.h"
  mkdir -p "$work/stage/lib/pkgconfig"
  cat > "$work/stage/lib/pkgconfig/libarchive.pc" <<EOF
# static only: a plain \`pkg-config --libs\` must name what libarchive.a needs, and the
# archive by its path (an -L here would lose to the system's libarchive.so in a link line
# that has -L/usr/lib/<triplet> first, as Python's extension builds do)
prefix=$dest
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libarchive
Description: libarchive $ver for boxlite's wheel (scripts/build-libarchive.sh)
Version: ${ver#*:}
Cflags: -I\${includedir}
Libs: \${libdir}/libarchive.a -lzstd -lz
EOF
  rm -rf "$dest" && mv "$work/stage" "$dest"
}

main() {
  local ver key dest start
  debsrc_ensure libarchive
  ver=$(debsrc_version libarchive)
  key=$({ printf '%s\n' "${CONFIGURE_FLAGS[@]}"; cat "$0"; } | debsrc_key "$ver")
  dest=$CACHE/$key
  debsrc_lock
  if [ -f "$dest/lib/libarchive.a" ]; then
    echo "build-libarchive: cached $dest" >&2
    echo "$dest"
    return 0
  fi
  debsrc_install_deps "${BUILD_DEPS[@]}"
  start=$(date +%s)
  echo "build-libarchive: building libarchive $ver (-j$JOBS) into $dest" >&2
  build "$ver" "$dest"
  echo "build-libarchive: built in $(($(date +%s) - start)) s ($(du -sk "$dest" | cut -f1) KiB)" >&2
  echo "$dest"
}

main "$@"
