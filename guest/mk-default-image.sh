#!/bin/sh
# mk-default-image.sh — builds the built-in default box image: a tiny busybox rootfs
# (from Debian's busybox-static) as an ext4 file, plus OUT.sha256 with its digest.
#
# usage: mk-default-image.sh OUT.ext4
# No root and no mounting: the tree is staged in a temp dir and written with
# mke2fs -d, everything owned by root inside. The file is sparse (512 MiB virtual).
set -eu

die() { echo "mk-default-image.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: mk-default-image.sh OUT.ext4"
OUT=$1
SIZE=${BOXLITE_IMAGE_SIZE:-512M}

MKE2FS=$(command -v mke2fs || echo /sbin/mke2fs)
[ -x "$MKE2FS" ] || MKE2FS=/usr/sbin/mke2fs
[ -x "$MKE2FS" ] || die "mke2fs not found (install e2fsprogs)"
command -v sha256sum >/dev/null 2>&1 || die "missing tool: sha256sum"

# Debian's busybox-static installs /bin/busybox; BOXLITE_BUSYBOX overrides.
BUSYBOX=${BOXLITE_BUSYBOX:-/bin/busybox}
[ -x "$BUSYBOX" ] || die "no busybox at $BUSYBOX (apt-get install busybox-static)"
if file_out=$(command -v file >/dev/null 2>&1 && file -L "$BUSYBOX"); then
    case "$file_out" in *dynamically*) die "$BUSYBOX is dynamically linked; need busybox-static" ;; esac
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/boxlite-image.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT INT TERM
R=$STAGE/root
mkdir -p "$R"

for d in bin sbin usr/bin usr/sbin usr/local/bin usr/local/sbin etc root home/user \
    proc sys dev tmp var/tmp run mnt opt; do
    mkdir -p "$R/$d"
done
chmod 1777 "$R/tmp" "$R/var/tmp"
chmod 0700 "$R/root"

cp "$BUSYBOX" "$R/bin/busybox"
chmod 0755 "$R/bin/busybox"
"$BUSYBOX" --list-full >"$STAGE/applets" || die "$BUSYBOX --list-full failed"
while IFS= read -r path; do
    case "$path" in "" | bin/busybox) continue ;; esac
    dir=$(dirname "$path")
    mkdir -p "$R/$dir"
    # Relative link to /bin/busybox from the applet's directory.
    up=$(echo "$dir" | sed 's|[^/][^/]*|..|g')
    [ -e "$R/$path" ] || ln -s "$up/bin/busybox" "$R/$path"
done <"$STAGE/applets"

cat >"$R/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
PW
cat >"$R/etc/group" <<'GR'
root:x:0:
users:x:100:user
nogroup:x:65534:
user:x:1000:
GR
cat >"$R/etc/shadow" <<'SH'
root:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
user:*:19000:0:99999:7:::
SH
chmod 0640 "$R/etc/shadow"
echo boxlite >"$R/etc/hostname"
cat >"$R/etc/hosts" <<'HO'
127.0.0.1	localhost
::1	localhost
HO
cat >"$R/etc/os-release" <<'OS'
NAME="boxlite default (busybox)"
PRETTY_NAME="boxlite default (busybox)"
ID=boxlite
VERSION_ID=0.1
OS
: >"$R/etc/resolv.conf"

# Fixed timestamps, UUID and hash seed make the image nearly reproducible (mke2fs
# still writes a few varying bytes, so OUT.sha256 is the digest of this build's file).
find "$R" -exec touch -h -d @0 {} + 2>/dev/null || true

mkdir -p "$(dirname "$OUT")"
rm -f "$OUT.tmp"
truncate -s "$SIZE" "$OUT.tmp" || die "cannot create $OUT.tmp"
E2FSPROGS_FAKE_TIME=1 "$MKE2FS" -q -F -t ext4 -L boxlite-root \
    -U 6c6f6278-6574-6469-6661-756c74000001 \
    -E root_owner=0:0,hash_seed=6c6f6278-6574-6469-6661-756c74000002 \
    -d "$R" "$OUT.tmp" || die "mke2fs failed"
# mke2fs -d copies the staging files' owners; as a normal user those are not root. Make
# every inode root's with debugfs (still no mount, no privilege), then give /home/user
# to uid 1000.
DEBUGFS=$(command -v debugfs || echo /sbin/debugfs)
[ -x "$DEBUGFS" ] || DEBUGFS=/usr/sbin/debugfs
[ -x "$DEBUGFS" ] || die "debugfs not found (install e2fsprogs)"
if [ "$(id -u)" != 0 ] || [ "$(id -g)" != 0 ]; then
    (cd "$R" && find . -mindepth 1) | sed 's|^\.||' | while IFS= read -r f; do
        printf 'sif "%s" uid 0\nsif "%s" gid 0\n' "$f" "$f"
    done >"$STAGE/chown.cmds"
fi
printf 'sif /home/user uid 1000\nsif /home/user gid 1000\n' >>"$STAGE/chown.cmds"
"$DEBUGFS" -w -f "$STAGE/chown.cmds" "$OUT.tmp" >/dev/null 2>"$STAGE/debugfs.err" ||
    die "debugfs failed: $(cat "$STAGE/debugfs.err")"
if grep -qv '^debugfs ' "$STAGE/debugfs.err"; then
    die "debugfs: $(grep -v '^debugfs ' "$STAGE/debugfs.err" | head -n 3)"
fi
mv "$OUT.tmp" "$OUT"
sha256sum "$OUT" | cut -d' ' -f1 >"$OUT.sha256.tmp"
mv "$OUT.sha256.tmp" "$OUT.sha256"
