#!/usr/bin/env bash
# build-qemu.sh — builds the QEMU boxlite ships in its wheel, from Debian's qemu source package
# (apt's deb-src for the archive the machine already uses, scripts/debsrc.sh; no other
# download), configured for
# what src/lib/vmm.c asks of it and nothing else: x86_64 system emulation, -M microvm, the
# virtio-mmio devices boxes attach (blk, serial, net over -netdev stream, 9p, balloon), TCG and KVM,
# -sandbox (seccomp), qcow2/raw/file, QMP and -incoming fd; plus qemu-img and qboot (microvm's
# firmware, built from the same source). No GUI, audio, USB devices, slirp or other targets.
# Our own changes to the source are the patches in scripts/qemu-patches/ (each says why).
#
# The result is cached outside the work tree, in
#   ${BOXLITE_QEMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boxlite/qemu}/<key>/
# key = source version + hash(configure flags, device list, this script, bundle-libs.sh, the
# base library list, debsrc.sh), so a second
# `make wheel` (or CI on the same machine) does not rebuild. Layout of <key>/:
#   bin/qemu-system-x86_64 bin/qemu-img   (run path $ORIGIN/../lib)
#   lib/*.so.*                             (what a bare Debian lacks; scripts/bundle-libs.sh)
#   share/qemu/bios-microvm.bin
# Prints the cache directory on stdout (last line); progress and the build time on stderr.
# Usage: scripts/build-qemu.sh [--print-dir]   (--print-dir: only print the directory it
# would use, build nothing)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
JOBS=${JOBS:-2}
CACHE=${BOXLITE_QEMU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/boxlite/qemu}

# What src/lib/vmm.c puts on QEMU's command line, as Kconfig symbols: the microvm board selects
# the virtio-mmio transport, the ISA serial port, the RTC and the reduced-hardware ACPI.
DEVICES='CONFIG_MICROVM=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_9P=y
CONFIG_VIRTIO_BALLOON=y'

CONFIGURE_FLAGS=(
  # any prefix but "/" (7.2 relocates only paths below a real prefix): QEMU finds its data
  # as <its directory>/../share/qemu, wherever it is installed
  --prefix=/usr
  --target-list=x86_64-softmmu
  --without-default-features --without-default-devices
  --with-devices-x86_64=boxlite
  --enable-kvm --enable-tcg
  --enable-seccomp
  --enable-virtfs --enable-attr --enable-cap-ng
  --enable-fdt=system
  --enable-tools
  --disable-docs --disable-guest-agent --disable-werror --disable-debug-info
  # QEMU's RCU thread hands freed heap back (malloc_trim), as Debian's build does: ~3 MiB
  # per box after a restore (--without-default-features turns it off)
  --enable-malloc-trim
  --block-drv-rw-whitelist=qcow2,raw,file --block-drv-ro-whitelist=
  --disable-install-blobs
)

# Debian packages the configuration above needs (and nothing a full build-dep would pull in).
BUILD_DEPS=(build-essential pkg-config meson ninja-build python3 dpkg-dev patchelf patch
            libglib2.0-dev libpixman-1-dev libfdt-dev libseccomp-dev libcap-ng-dev zlib1g-dev)

die() { echo "build-qemu: $*" >&2; exit 1; }

. "$HERE/debsrc.sh"

# qboot: microvm's default firmware (bios-microvm.bin), 64 KiB, from roms/qboot.
build_qboot() {
  local src=$1 out=$2
  meson setup "$out/qboot-build" "$src/roms/qboot" >&2
  ninja -C "$out/qboot-build" >&2
  install -D -m 0644 "$out/qboot-build/bios.bin" "$out/stage/share/qemu/bios-microvm.bin"
}

WORK=
cleanup() { [ -z "$WORK" ] || rm -rf "$WORK"; }
trap cleanup EXIT

build() {
  local ver=$1 dest=$2 work
  work=$(mktemp -d "$CACHE/.build.XXXXXX")
  WORK=$work
  debsrc_extract qemu "$ver" "$work/src"
  printf '%s\n' "$DEVICES" > "$work/src/configs/devices/x86_64-softmmu/boxlite.mak"
  # QEMU 7.2 without the PC boards links both hw/acpi/acpi-x86-stub.c and
  # hw/i386/acpi-common.c, each defining pc_madt_cpu_entry: make the stub's weak.
  sed -i 's/^void pc_madt_cpu_entry(/__attribute__((weak)) void pc_madt_cpu_entry(/' \
    "$work/src/hw/acpi/acpi-x86-stub.c"
  local p
  for p in "$HERE"/qemu-patches/*.patch; do
    patch -d "$work/src" -p1 --forward --quiet < "$p" >&2 || die "patch $(basename "$p") does not apply"
  done
  mkdir -p "$work/build"
  (cd "$work/build" && ../src/configure "${CONFIGURE_FLAGS[@]}" >&2)
  ninja -C "$work/build" -j"$JOBS" qemu-system-x86_64 qemu-img >&2
  mkdir -p "$work/stage/bin" "$work/stage/lib"
  install -m 0755 "$work/build/qemu-system-x86_64" "$work/build/qemu-img" "$work/stage/bin/"
  strip "$work/stage/bin/"*
  build_qboot "$work/src" "$work"
  "$HERE/bundle-libs.sh" "$work/stage/lib" '$ORIGIN/../lib' "$work/stage/bin/"*
  rm -rf "$dest" && mv "$work/stage" "$dest"
}

main() {
  debsrc_ensure qemu
  local ver key dest start
  ver=$(debsrc_version qemu)
  key=$({ printf '%s\n' "${CONFIGURE_FLAGS[@]}"; printf '%s\n' "$DEVICES"
          cat "$0" "$HERE/bundle-libs.sh" "$HERE/debian12-base-libs.txt" "$HERE"/qemu-patches/*.patch
        } | debsrc_key "$ver")
  dest=$CACHE/$key
  if [ "${1:-}" = "--print-dir" ]; then echo "$dest"; return 0; fi
  debsrc_lock
  if [ -x "$dest/bin/qemu-system-x86_64" ]; then
    echo "build-qemu: cached $dest" >&2
    echo "$dest"
    return 0
  fi
  debsrc_install_deps "${BUILD_DEPS[@]}"
  start=$(date +%s)
  echo "build-qemu: building QEMU $ver (-j$JOBS) into $dest" >&2
  build "$ver" "$dest"
  echo "build-qemu: built in $(($(date +%s) - start)) s; sizes:" >&2
  du -ab "$dest" | sort -k2 >&2
  echo "$dest"
}

main "$@"
