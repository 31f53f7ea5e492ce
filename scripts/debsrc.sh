# debsrc.sh — sourced by scripts/build-qemu.sh and scripts/build-libarchive.sh: building a
# Debian source package into a cache outside the work tree. apt's deb-src for the archive the
# machine already uses (added next to the existing .sources files if missing; no other
# download), the build dependencies, the cache key (source version + hash of what the caller
# feeds it), the source unpacked with Debian's patches, one build at a time under a lock.
# The caller sets CACHE and defines die().

# The source version apt would fetch: the candidate of source package $1.
debsrc_version() {
  apt-cache showsrc "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -1
}

# deb-src for the same archive(s) as the existing deb822 sources, if $1 has no source yet.
debsrc_ensure() {
  [ -n "$(debsrc_version "$1")" ] && return 0
  [ "$(id -u)" -eq 0 ] || die "no deb-src for $1; as root add one (see docs/packaging.md)"
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    grep -q '^Types: deb$' "$f" || continue
    sed 's/^Types: deb$/Types: deb-src/' "$f" > "/etc/apt/sources.list.d/boxlite-src-$(basename "$f")"
  done
  apt-get update -q >&2
  [ -n "$(debsrc_version "$1")" ] || die "apt has no source for $1 after adding deb-src entries"
}

# Install the Debian packages named that are missing (root only).
debsrc_install_deps() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# <version>-<16 hex of sha256(stdin and this file)>: the cache directory's name.
debsrc_key() {
  local ver=$1
  { cat; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16 |
    sed "s/^/${ver//[^A-Za-z0-9.+~-]/_}-/"
}

# Unpack source package $1 version $2 (downloaded once into $CACHE/src) as directory $3.
debsrc_extract() {
  local pkg=$1 ver=$2 dest=$3 dsc
  mkdir -p "$CACHE/src"
  (cd "$CACHE/src" && apt-get source --download-only -q "$pkg=$ver" >&2)
  dsc=$(ls "$CACHE/src/${pkg}_${ver#*:}.dsc")
  dpkg-source -x "$dsc" "$dest" >&2
}

# Take the cache's lock on fd 9 (one build at a time; a second caller waits, then finds it
# cached). Held until the script exits.
debsrc_lock() {
  mkdir -p "$CACHE"
  exec 9> "$CACHE/.lock"
  flock 9
}
