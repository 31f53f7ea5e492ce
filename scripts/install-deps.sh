#!/usr/bin/env bash
# install-deps.sh — installs, from Debian's archive, every package boxlite needs to build,
# run and test, skipping what is already there. Used by `make deps` (and so by demo/test).
set -euo pipefail

PACKAGES=(
  build-essential pkg-config meson ninja-build musl-tools clang-format
  qemu-system-x86 qemu-utils e2fsprogs cpio kmod busybox-static zstd
  libsqlite3-dev libslirp-dev libhttp-parser-dev tmux valgrind
  libcurl4-openssl-dev libarchive-dev libext2fs-dev libjansson-dev libssl-dev
  libmicrohttpd-dev libgnutls28-dev libwslay-dev python3-websocket
  docker-registry skopeo mmdebstrap openssl
  clang-14 libclang-rt-14-dev
  python3 python3-pytest python3-pytest-asyncio python3-setuptools python3-dev python3-pip
  python3-wheel patchelf dpkg-dev
  # scripts/build-qemu.sh: what our QEMU's configuration needs from Debian
  libglib2.0-dev libpixman-1-dev libfdt-dev libseccomp-dev libcap-ng-dev zlib1g-dev
  # scripts/build-libarchive.sh: the wheel's static libarchive (Debian's patches need autoreconf)
  autoconf automake libtool libzstd-dev
  # the ABI check of libboxlite against its 1.0 baseline: abidw, abidiff (scripts/check-abi.sh)
  abigail-tools
)

# OCI runtime tests (tests/oci/): the engines that drive boxlite-runtime
PACKAGES+=(podman conmon crun runc containerd)
# tests/oci/test_cri.py: its CRI client (gRPC, and protoc for its cri_min.proto)
PACKAGES+=(python3-grpcio python3-grpc-tools)
# deploy/ manifests parsed by tests/oci/test_deploy.py
PACKAGES+=(python3-yaml)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Stoplight Prism (npm): the OpenAPI validating proxy tests/serve judges `boxlite serve` with.
# npm is Debian's (nodejs); a failure here only makes those tests skip, with their reason.
install_prism() {
  command -v prism >/dev/null && return 0
  [ "$(id -u)" -eq 0 ] || return 0
  command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm >&2 || return 0
  npm install -g --no-audit --no-fund @stoplight/prism-cli@5 >&2 || echo "install-deps: prism not installed" >&2
}
# autocannon (npm): the HTTP load generator of bench/serve, installed beside Prism (npm -g).
install_autocannon() {
  command -v autocannon >/dev/null && return 0
  [ "$(id -u)" -eq 0 ] && command -v npm >/dev/null || return 0
  npm install -g --no-audit --no-fund autocannon@7 >&2 || echo "install-deps: autocannon not installed" >&2
}

if [ ${#missing[@]} -eq 0 ]; then install_prism; install_autocannon; exit 0; fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=(sudo)
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q >&2
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
install_prism
install_autocannon
