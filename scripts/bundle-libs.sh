#!/usr/bin/env bash
# bundle-libs.sh — auditwheel's approach with Debian's patchelf: copies every shared library
# the given ELF files load, except glibc's own and those every Debian 12 with python3 has
# (scripts/debian12-base-libs.txt), into LIBDIR
# under its soname, and points the run paths at them: RPATH on the given files (e.g.
# '$ORIGIN/../lib'), '$ORIGIN' on the copies. Used for QEMU (scripts/build-qemu.sh) and for
# the wheel's _core module and boxlite-shim (scripts/build-wheel.sh).
# Usage: scripts/bundle-libs.sh LIBDIR RPATH ELF...
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 LIBDIR RPATH ELF..." >&2; exit 2; }
libdir=$1 rpath=$2
shift 2
BASE=$(dirname "$0")/debian12-base-libs.txt
mkdir -p "$libdir"

# glibc (libc6) and libgcc-s1: every Debian has them, and they must match the running libc.
system_lib() {
  case "$1" in
    linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libdl.so.* | librt.so.* | \
      libpthread.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnss_*.so.* | \
      libgcc_s.so.*) return 0 ;;
  esac
  grep -qxF "$1" "$BASE"
}

for elf in "$@"; do
  ldd "$elf" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | while read -r soname path; do
    system_lib "$soname" && continue
    [ -e "$libdir/$soname" ] && continue
    cp -L "$path" "$libdir/$soname"
    chmod 0644 "$libdir/$soname"
    strip --strip-unneeded "$libdir/$soname"
    patchelf --set-rpath '$ORIGIN' "$libdir/$soname"
  done
  if ldd "$elf" | grep -q 'not found'; then
    echo "bundle-libs: $elf: unresolved libraries" >&2
    ldd "$elf" >&2
    exit 1
  fi
  patchelf --set-rpath "$rpath" "$elf"
done
