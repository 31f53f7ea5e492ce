"""test_copy.py — `boxlite cp` against one real box shared by the module: round trips of a
large tree (10k files, symlinks, empty dirs, a 500 MB file, odd modes), the copy options,
tar streams on stdin/stdout, and hostile archives from the guest that must not escape."""
import hashlib
import io
import os
import stat
import subprocess
import tarfile
import time

import pytest

BOX = "cp-test-box"


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


@pytest.fixture(scope="module")
def box(cli):
    cli.run("rm", "-f", BOX)
    ok(cli.run("create", "--name", BOX, "-d", "--disk-size", "3"))
    ok(cli.run("start", BOX, timeout=300))
    yield BOX
    cli.run("rm", "-f", BOX, timeout=120)


def snapshot(root):
    """{relative path: (type, mode, mtime, digest or link target)} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", None, None, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", stat.S_IMODE(st.st_mode), int(st.st_mtime), None)
            else:
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                out[rel] = ("f", stat.S_IMODE(st.st_mode), int(st.st_mtime), h.hexdigest())
    return out


def make_tree(root, nfiles=10000, big_mb=0):
    os.makedirs(root)
    for i in range(nfiles):
        d = os.path.join(root, f"d{i // 500}", f"s{i % 7}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}"), "wb") as f:
            f.write(f"file {i}\n".encode() * (i % 5))
    os.makedirs(os.path.join(root, "empty", "deeper"))
    os.makedirs(os.path.join(root, "emptytop"))
    os.symlink("d0/s0/f0", os.path.join(root, "rel-link"))
    os.symlink("/etc/passwd", os.path.join(root, "abs-link"))
    os.symlink("nowhere", os.path.join(root, "dangling"))
    os.symlink("d1", os.path.join(root, "dir-link"))
    for name, mode in [("m0000", 0o000), ("m0751", 0o751), ("m4755", 0o4755),
                       ("m2711", 0o2711), ("m0400", 0o400)]:
        p = os.path.join(root, name)
        with open(p, "wb") as f:
            f.write(name.encode())
        os.chmod(p, mode)
    sticky = os.path.join(root, "sticky")
    os.makedirs(sticky)
    os.chmod(sticky, 0o1777)
    ro = os.path.join(root, "readonly-dir")
    os.makedirs(ro)
    with open(os.path.join(ro, "inside"), "wb") as f:
        f.write(b"x")
    os.chmod(ro, 0o555)
    if big_mb:
        with open(os.path.join(root, "big.bin"), "wb") as f:
            block = os.urandom(1 << 20)
            for i in range(big_mb):
                f.write(block[i % 997:] + block[:i % 997])
    os.utime(os.path.join(root, "m0751"), (1000000000, 1000000000))
    os.utime(ro, (1200000000, 1200000000))


def test_round_trip_tree_10k_files_symlinks_modes_and_500mb(cli, box, tmp_path):
    src = tmp_path / "src"
    make_tree(str(src), nfiles=10000, big_mb=500)
    want = snapshot(str(src))
    ok(cli.run("exec", box, "--", "mkdir", "-p", "/srv"))
    t0 = time.monotonic()
    ok(cli.run("cp", str(src), f"{box}:/srv/", timeout=900))
    t_in = time.monotonic() - t0
    t0 = time.monotonic()
    ok(cli.run("cp", f"{box}:/srv/src", str(tmp_path / "back"), timeout=900))
    t_out = time.monotonic() - t0
    got = snapshot(str(tmp_path / "back"))
    # Copy-out keeps permission bits only, masked by the caller's umask: setuid, setgid and
    # sticky from the guest never land on the host (m4755 → 0755, sticky 1777 → 0755).
    umask = os.umask(0)
    os.umask(umask)
    want = {k: (t, m & 0o777 & ~umask if m is not None else m, mt, h)
            for k, (t, m, mt, h) in want.items()}
    assert set(got) == set(want)
    bad = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
    assert not bad, list(bad.items())[:5]
    print(f"copy_in {t_in:.1f}s, copy_out {t_out:.1f}s for ~{500 + 1} MB")
    ok(cli.run("exec", box, "--", "rm", "-rf", "/srv/src"))


def test_single_file_to_new_name_and_into_dir(cli, box, tmp_path):
    f = tmp_path / "one.txt"
    f.write_bytes(b"one\n")
    ok(cli.run("cp", str(f), f"{box}:/tmp/renamed.txt"))
    ok(cli.run("exec", box, "--", "mkdir", "-p", "/tmp/into"))
    ok(cli.run("cp", str(f), f"{box}:/tmp/into"))
    r = ok(cli.run("exec", box, "--", "cat", "/tmp/renamed.txt", "/tmp/into/one.txt"))
    assert r.stdout == b"one\none\n"
    out = tmp_path / "outdir"
    out.mkdir()
    ok(cli.run("cp", f"{box}:/tmp/renamed.txt", str(out)))
    ok(cli.run("cp", f"{box}:/tmp/renamed.txt", str(tmp_path / "x.txt")))
    assert (out / "renamed.txt").read_bytes() == b"one\n"
    assert (tmp_path / "x.txt").read_bytes() == b"one\n"


def test_no_overwrite_and_missing_source_fail_clearly(cli, box, tmp_path):
    f = tmp_path / "exists.txt"
    f.write_bytes(b"old")
    ok(cli.run("exec", box, "--", "sh", "-c", "echo new > /tmp/exists.txt"))
    r = cli.run("cp", "--no-overwrite", f"{box}:/tmp/exists.txt", str(f))
    assert r.returncode == 125 and b"exists" in r.stderr, r.stderr
    assert f.read_bytes() == b"old"
    ok(cli.run("cp", f"{box}:/tmp/exists.txt", str(f)))
    assert f.read_bytes() == b"new\n"
    r = cli.run("cp", f"{box}:/no/such/file", str(tmp_path / "y"))
    assert r.returncode == 125 and b"No such file" in r.stderr, r.stderr
    assert not (tmp_path / "y").exists()


def test_follow_symlinks_copies_the_target(cli, box, tmp_path):
    ok(cli.run("exec", box, "--", "sh", "-c",
               "mkdir -p /tmp/fl && echo target > /tmp/fl/t && ln -sf t /tmp/fl/l"))
    ok(cli.run("cp", f"{box}:/tmp/fl/l", str(tmp_path / "as-link")))
    ok(cli.run("cp", "-L", f"{box}:/tmp/fl/l", str(tmp_path / "as-file")))
    assert os.readlink(tmp_path / "as-link") == "t"
    assert (tmp_path / "as-file").read_bytes() == b"target\n"
    assert not (tmp_path / "as-file").is_symlink()


def test_tar_streams_on_stdin_and_stdout(cli, box, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        long = "l" * 150 + "/" + "n" * 120
        for name, data in [("a.txt", b"A"), (long, b"L")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640
            info.mtime = 1500000000
            t.addfile(info, io.BytesIO(data))
    ok(cli.run("exec", box, "--", "mkdir", "-p", "/tmp/tin"))
    ok(cli.run("cp", "-", f"{box}:/tmp/tin", input=buf.getvalue()))
    r = ok(cli.run("cp", f"{box}:/tmp/tin", "-"))
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
        names = {m.name: m for m in t.getmembers()}
    assert names["tin/a.txt"].mode == 0o640 and names["tin/a.txt"].mtime == 1500000000
    assert "tin/" + long in names


# ---- hostile archives from the guest ----

def crafted(entries):
    """A tar from (name, kind, data_or_target) with kind f (file) or l (symlink)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "l":
                info.type = tarfile.SYMTYPE
                info.linkname = payload
                t.addfile(info)
            elif kind == "d":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                t.addfile(info)
            else:
                info.size = len(payload)
                t.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


def listing(root):
    return sorted((os.path.relpath(os.path.join(d, n), root))
                  for d, ds, fs in os.walk(root) for n in ds + fs)


HOSTILE = {
    "dotdot": [("top", "d", None), ("top/../../escaped", "f", b"pwned")],
    "absolute": [("top", "d", None), ("/tmp/boxlite-abs-escape", "f", b"pwned")],
    # dest is arena/a/b: top/link → arena/outside, where the sentinel "keep" is
    "symlink_then_write": [("top", "d", None), ("top/link", "l", "../../../outside"),
                           ("top/link/keep", "f", b"pwned"), ("top/link/pwned", "f", b"pwned")],
    "symlink_abs_then_write": [("top", "d", None), ("top/link", "l", "/tmp"),
                               ("top/link/boxlite-pwned", "f", b"pwned")],
    "other_top": [("top", "d", None), ("elsewhere/file", "f", b"pwned")],
    "giant_header": [("top", "d", None), ("top/" + "x" * (3 << 20), "f", b"big")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_copy_out_writes_nothing_outside(cli, box, tmp_path, case):
    evil = tmp_path / "evil.tar"
    evil.write_bytes(crafted(HOSTILE[case]))
    ok(cli.run("cp", str(evil), f"{box}:/tmp/evil-{case}.tar"))
    arena = tmp_path / "arena"
    (arena / "outside").mkdir(parents=True)
    (arena / "outside" / "keep").write_bytes(b"keep")
    before = listing(str(arena))
    dest = arena / "a" / "b"
    dest.mkdir(parents=True)
    r = cli.run("cp", f"{box}:raw-tar:/tmp/evil-{case}.tar", str(dest),
                env={"BOXLITE_TEST_HOOKS": "1"}, timeout=300)
    assert r.returncode == 125, (r.stdout, r.stderr)
    assert b"entry" in r.stderr or b"headers" in r.stderr, r.stderr
    after = [p for p in listing(str(arena)) if not p.startswith("a/b/")]
    assert after == before + ["a", "a/b"] or sorted(after) == sorted(before + ["a", "a/b"])
    assert (arena / "outside" / "keep").read_bytes() == b"keep"
    assert not os.path.exists("/tmp/boxlite-abs-escape")
    assert not os.path.exists("/tmp/boxlite-pwned")



# ---- copy-in: a source tree that changes under the walk ----

def test_copy_in_never_follows_a_symlink_swapped_in_mid_walk(cli, box, tmp_path, build_dir):
    """`boxlite cp HOSTDIR BOX:/dst` while boxlite-flip (tests/hostile/flip.c) keeps exchanging
    files and directories of the source tree with symlinks to a secret outside it, between the
    walk's stat and its open. Each copy either succeeds or fails on the change; the secret's
    content never reaches the box. Bounded: at most 300 copies and 120 s. (The race is narrow:
    with O_NOFOLLOW and the inode check taken out, about 3% of copies leak here.)"""
    flip = build_dir / "tests" / "hostile" / "boxlite-flip"
    assert flip.exists(), f"{flip} missing: build first"
    token = "TOPSECRET-" + os.urandom(8).hex()
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text((token + "\n") * 32)
    harmless = b"harmless\n" * 128  # longer than the secret: a leak shows all of it
    src, stage = tmp_path / "src", tmp_path / "stage"
    src.mkdir()
    stage.mkdir()
    pairs = []
    for i in range(24):
        (src / f"f{i}").write_bytes(harmless)
        os.symlink(secret / "key", stage / f"f{i}")
        pairs += [str(src / f"f{i}"), str(stage / f"f{i}")]
    for i in range(8):
        (src / f"d{i}").mkdir()
        (src / f"d{i}" / "key").write_bytes(harmless)
        os.symlink(secret, stage / f"d{i}")
        pairs += [str(src / f"d{i}"), str(stage / f"d{i}")]
    ok(cli.run("exec", box, "--", "sh", "-c", "rm -rf /swap && mkdir /swap"))
    flipper = subprocess.Popen([str(flip), "140", *pairs], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    results = []
    t0 = time.monotonic()
    try:
        for k in range(300):
            if time.monotonic() - t0 > 120 or flipper.poll() is not None:
                break
            r = cli.run("cp", str(src), f"{box}:/swap/c{k}", timeout=300)
            results.append((r.returncode, r.stderr.decode(errors="replace")[-400:]))
    finally:
        flipper.terminate()
        out, err = flipper.communicate(timeout=30)
    assert flipper.returncode == 0, err
    flips = int(out)
    for rc, err in results:
        # a refused copy names the change: an inode that differs from what was stat'ed, a
        # link where a file or directory was (O_NOFOLLOW: ELOOP/ENOTDIR), a file where a link
        # was (readlink: EINVAL)
        assert rc == 0 or any(w in err for w in (
            "changed while it was copied", "symbolic links", "Not a directory",
            "Invalid argument")), (rc, err)
    # the tree as it is now (no flipping) copies whole: the check below is not vacuous
    ok(cli.run("cp", str(src), f"{box}:/swap/final", timeout=300))
    r = ok(cli.run("exec", box, "--", "sh", "-c",
                   "cat /swap/final/f0 /swap/final/d0/key | wc -c; "
                   f"grep -rl {token} /swap || true"))
    lines = r.stdout.decode().split()
    refused = sum(1 for rc, _ in results if rc != 0)
    print(f"copy-in swap: {flips} exchanges in {time.monotonic() - t0:.0f} s, "
          f"{len(results)} copies, {refused} refused")
    assert lines[0] == str(2 * len(harmless)), r.stdout
    assert not lines[1:], f"the secret reached the box in {lines[1:]}"
    ok(cli.run("exec", box, "--", "rm", "-rf", "/swap"))
