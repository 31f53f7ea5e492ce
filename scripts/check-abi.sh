#!/bin/sh
# check-abi.sh — libboxlite's ABI against the baseline of its major release
# (abi/libboxlite-1.0.abi.xml): new functions and fields appended to a public struct pass;
# a removed or changed function, a changed type, a moved or removed field fail. Run by
# `make test` (check-abi). Policy: docs/api.md.
#   scripts/check-abi.sh [BUILD_DIR]            check the built library
#   scripts/check-abi.sh --write [BUILD_DIR]    write the baseline (a new major release only)
set -eu
cd "$(dirname "$0")/.."
write=0
if [ "${1:-}" = "--write" ]; then write=1; shift; fi
build=${1:-build}
baseline=abi/libboxlite-1.0.abi.xml
lib=$(readlink -f "$build/src/lib/libboxlite.so")
command -v abidw >/dev/null || { echo "check-abi: abidw missing (scripts/install-deps.sh: abigail-tools)" >&2; exit 1; }
[ -f "$lib" ] || { echo "check-abi: $build/src/lib/libboxlite.so not built" >&2; exit 1; }

# Both sides are read the same way: only what include/ declares, no source locations.
dump() {
    abidw --exported-interfaces-only --no-show-locs --no-corpus-path --no-comp-dir-path \
        --headers-dir include --drop-private-types --out-file "$1" "$lib"
}
if [ "$write" -eq 1 ]; then
    dump "$baseline"
    echo "check-abi: wrote $baseline from $lib"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dump "$tmp/now.xml"
# The report, additions included, for the log; the verdict ignores added functions.
abidiff --suppressions abi/appended.suppr "$baseline" "$tmp/now.xml" >"$tmp/report" || true
rc=0
abidiff --no-added-syms --suppressions abi/appended.suppr "$baseline" "$tmp/now.xml" \
    >/dev/null || rc=$?
# abidiff's status bits: 1 error, 2 usage, 4 an ABI change, 8 an incompatible one. With
# additions and appended fields left out, any of them is a failure.
if [ "$rc" -ne 0 ]; then
    cat "$tmp/report" >&2
    echo "check-abi: FAIL: libboxlite's ABI breaks $baseline (abidiff status $rc)." >&2
    echo "  Shipped functions and fields never change: add a _v2 / append a field (docs/api.md)." >&2
    exit 1
fi
grep -q "Added function" "$tmp/report" && sed -n '/Added function/,$p' "$tmp/report"
echo "check-abi: ok: compatible with $baseline"
