#!/usr/bin/env python3
"""make_hostile_untar.py — writes the hostile seeds of tests/fuzz/corpus_untar (the copy
tests' attacks and more): names that escape, a link then a write through it, setuid and
setgid modes, hard links out, a link over the destination's own name. Run from the repo root;
the seeds are committed, this says how they were made."""
import io
import pathlib
import tarfile

OUT = pathlib.Path(__file__).resolve().parent / "corpus_untar"


def tar(*entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, arg, *mode in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = mode[0] if mode else 0o644
            if kind == "d":
                ti.type = tarfile.DIRTYPE
                ti.mode = mode[0] if mode else 0o755
                t.addfile(ti)
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, arg
                t.addfile(ti)
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, arg
                t.addfile(ti)
            else:
                ti.size = len(arg)
                t.addfile(ti, io.BytesIO(arg))
    return b.getvalue()


SEEDS = {
    "dotdot": tar(("top", "d", None), ("top/../../escaped", "f", b"pwned")),
    "dotdot_first": tar(("../escaped", "f", b"pwned")),
    "absolute": tar(("top", "d", None), ("/tmp/fuzz-untar-abs-escape", "f", b"pwned")),
    "absolute_first": tar(("/tmp/fuzz-untar-abs-first", "f", b"pwned")),
    "symlink_then_write": tar(("top", "d", None), ("top/link", "l", "../../sentinel"),
                              ("top/link/keep", "f", b"pwned"),
                              ("top/link/new", "f", b"pwned")),
    "symlink_abs_then_write": tar(("top", "d", None), ("top/link", "l", "/tmp"),
                                  ("top/link/fuzz-untar-pwned", "f", b"pwned")),
    "symlink_dotdot_chain": tar(("top", "d", None), ("top/a", "l", "."),
                                ("top/b", "l", "a/../.."), ("top/b/escaped", "f", b"x")),
    "symlink_leaf_then_file": tar(("top", "d", None), ("top/f", "l", "../../sentinel/keep"),
                                  ("top/f", "f", b"overwrite through the link")),
    "symlink_then_dir": tar(("top", "d", None), ("top/d", "l", "../.."),
                            ("top/d/sub", "d", None), ("top/d/sub/x", "f", b"x")),
    "setuid_modes": tar(("top", "d", None, 0o7777), ("top/suid", "f", b"#!/bin/sh\n", 0o4755),
                        ("top/sgid", "f", b"x", 0o2755), ("top/sticky", "d", None, 0o1777),
                        ("top/nomode", "d", None, 0o000), ("top/nomode/f", "f", b"x")),
    "hardlink_out": tar(("top", "d", None), ("top/h", "h", "../../sentinel/keep")),
    "hardlink_abs": tar(("top", "d", None), ("top/h", "h", "/etc/passwd")),
    "hardlink_in": tar(("top", "d", None), ("top/a", "f", b"a"), ("top/b", "h", "top/a")),
    "other_top": tar(("top", "d", None), ("elsewhere/file", "f", b"pwned")),
    "dot_names": tar(("./top/./", "d", None), ("top//x/", "d", None), ("top/x/../y", "f", b"y")),
    "file_then_dir_same": tar(("top", "d", None), ("top/x", "f", b"x"), ("top/x", "d", None),
                              ("top/x/y", "f", b"y")),
}

if __name__ == "__main__":
    for name, data in SEEDS.items():
        (OUT / f"hostile_{name}.tar").write_bytes(data)
    print(f"{len(SEEDS)} seeds in {OUT}")
