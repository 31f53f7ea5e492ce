"""test_hostile_guest.py — a hostile guest, for real: inside one real box (no test hooks),
tests/hostile's boxlite-hostile takes the agent's channel from PID 1 (pidfd_getfd + ptrace)
and answers the host's next request with crafted frames: copy-out tars that escape, plant
files beside the destination, carry setuid bits, devices and sparse monsters, and exec replies
with bogus exit codes, malformed, over-credit and oversized frames. Each call must end in
bounded time with a clear error or a confined result, and the host must stay intact."""
import os
import stat
import subprocess
import time

import pytest

from boxlite_paths import BOXLITE
from hijack import IN_BOX, TOOL, Hijack

BOX = "hostile-box"
BOUND_S = 90  # every hijacked call must end within this (TCG, a busy 2-core machine)


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


@pytest.fixture(scope="module")
def box(cli):
    if not TOOL.exists():
        pytest.skip(f"{TOOL} is not built (musl-gcc missing)")
    cli.run("rm", "-f", BOX)
    ok(cli.run("create", "--name", BOX, "-d"))
    ok(cli.run("start", BOX, timeout=300))
    ok(cli.run("cp", str(TOOL), f"{BOX}:{IN_BOX}"))
    yield BOX
    cli.run("rm", "-f", BOX, timeout=120)


def timed(cli, *args, shell_umask=None, **kw):
    t0 = time.monotonic()
    if shell_umask is None:
        r = cli.run(*args, timeout=BOUND_S + 30, **kw)
    else:
        cmd = " ".join(["umask", shell_umask, ";", "exec", str(BOXLITE)] + [f"'{a}'" for a in args])
        r = subprocess.run(["sh", "-c", cmd], capture_output=True, env=cli.env,
                           timeout=BOUND_S + 30)
    took = time.monotonic() - t0
    assert took < BOUND_S, (args, took)
    return r


def alive(cli, box):
    r = ok(cli.run("exec", box, "--", "echo", "alive", timeout=120))
    assert r.stdout == b"alive\n"


def tree(root):
    """{relative path: lstat} of everything under root."""
    out = {}
    for d, ds, fs in os.walk(root):
        for n in ds + fs:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = os.lstat(p)
    return out


@pytest.fixture
def arena(tmp_path):
    """home/ with a .bashrc and an .ssh/authorized_keys of its own, beside a dest/ dir."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".bashrc").write_text("orig\n")
    (home / ".ssh" / "authorized_keys").write_text("orig-key\n")
    (home / "dest").mkdir()
    return home


def untouched(arena, allowed):
    """Nothing changed outside arena/dest; under dest only the allowed names."""
    assert (arena / ".bashrc").read_text() == "orig\n"
    assert (arena / ".ssh" / "authorized_keys").read_text() == "orig-key\n"
    names = set(tree(arena))
    assert names - {f"dest/{a}" for a in allowed} == {".bashrc", ".ssh", ".ssh/authorized_keys",
                                                       "dest"}, names
    for p in ("/tmp/boxlite-hostile-abs", "/tmp/boxlite-hostile-pwned", str(arena.parent / "escaped"),
              str(arena / "escaped")):
        assert not os.path.exists(p), p


def test_the_tool_takes_the_channel_and_gives_it_back(cli, box):
    """The premise: while the tool holds the channel, the host talks to it, not the agent."""
    with Hijack(cli, box, "exitcode"):
        r = timed(cli, "exec", box, "--", "echo", "real")
    assert r.stdout == b"lies\n", r
    assert r.returncode == 255, r  # 123456789 from the guest, clamped to a shell status
    alive(cli, box)


def test_copy_out_top_entry_named_by_the_request_not_the_tar(cli, box, arena):
    """The tar names .bashrc, then .ssh/authorized_keys: the first lands as dest/hostname
    (the requested name), the second is outside the copied tree and refused."""
    with Hijack(cli, box, "beside"):
        r = timed(cli, "cp", f"{box}:/etc/hostname", str(arena / "dest"))
    assert r.returncode == 125 and b"outside the copied tree" in r.stderr, r
    untouched(arena, {"hostname"})
    assert (arena / "dest" / "hostname").read_text() == "pwned-bashrc\n"
    alive(cli, box)


def test_copy_out_to_a_new_name_lands_only_there(cli, box, arena):
    with Hijack(cli, box, "beside"):
        r = timed(cli, "cp", f"{box}:/etc/hostname", str(arena / "dest" / "new"))
    assert r.returncode == 125, r
    untouched(arena, {"new"})


@pytest.mark.parametrize("mode,why", [("dotdot", b".."), ("abs", b"absolute"),
                                      ("links", b"link"), ("hardlink", b"hard links")])
def test_copy_out_escapes_are_refused(cli, box, arena, mode, why):
    with Hijack(cli, box, mode):
        r = timed(cli, "cp", f"{box}:/x", str(arena / "dest"))
    assert r.returncode == 125 and why in r.stderr, r
    untouched(arena, {"x", "x/l"})
    assert not (arena / "dest" / "x" / "h").exists()


def test_copy_out_drops_setuid_setgid_sticky_and_applies_the_umask(cli, box, arena):
    with Hijack(cli, box, "setuid"):
        r = timed(cli, "cp", f"{box}:/x", str(arena / "dest"), shell_umask="027")
    ok(r)
    untouched(arena, {"x", "x/suid", "x/sgid", "x/sticky"})
    got = {n: stat.S_IMODE(st.st_mode) for n, st in tree(arena / "dest").items()}
    assert got == {"x": 0o750, "x/suid": 0o750, "x/sgid": 0o750, "x/sticky": 0o750}, got
    for n, st in tree(arena / "dest").items():
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), n


def test_copy_out_never_follows_a_symlink_already_in_the_destination(cli, box, arena):
    """dest/x is a link to a directory outside: the copy replaces the link, writes nothing
    through it."""
    outside = arena.parent / "outside"
    outside.mkdir()
    (arena / "dest" / "x").symlink_to(outside)
    with Hijack(cli, box, "setuid"):
        r = timed(cli, "cp", f"{box}:/x", str(arena / "dest"))
    ok(r)
    assert list(outside.iterdir()) == []
    assert not (arena / "dest" / "x").is_symlink() and (arena / "dest" / "x" / "suid").exists()


def test_copy_out_makes_no_devices_or_fifos(cli, box, arena):
    with Hijack(cli, box, "device"):
        r = timed(cli, "cp", f"{box}:/x", str(arena / "dest"))
    ok(r)
    untouched(arena, {"x", "x/ok"})
    assert (arena / "dest" / "x" / "ok").read_text() == "ok\n"


@pytest.mark.parametrize("mode", ["sparse1t", "size1t"])
def test_copy_out_terabyte_claims_are_refused_at_once(cli, box, arena, mode):
    with Hijack(cli, box, mode):
        r = timed(cli, "cp", f"{box}:/big", str(arena / "dest"))
    assert r.returncode == 125 and b"size limit" in r.stderr, r
    untouched(arena, {"big"})
    big = arena / "dest" / "big"
    assert not big.exists() or big.stat().st_blocks * 512 < (1 << 20)


def test_copy_out_sparse_file_stays_sparse_and_the_limit_is_the_callers(cli, box, arena):
    with Hijack(cli, box, "sparse2g"):
        r = timed(cli, "cp", "--max-size", "1G", f"{box}:/big", str(arena / "dest"))
    assert r.returncode == 125 and b"size limit" in r.stderr, r
    untouched(arena, {"big"})
    with Hijack(cli, box, "sparse2g"):
        r = timed(cli, "cp", f"{box}:/big", str(arena / "dest" / "big2"))
    ok(r)
    st = (arena / "dest" / "big2").stat()
    assert st.st_size == 2 << 30 and st.st_blocks * 512 < (1 << 20), st
    with open(arena / "dest" / "big2", "rb") as f:
        f.seek((2 << 30) - 512)
        assert f.read() == b"S" * 512


def test_copy_out_short_data_is_an_error(cli, box, arena):
    with Hijack(cli, box, "short"):
        r = timed(cli, "cp", f"{box}:/short", str(arena / "dest"))
    assert r.returncode == 125 and b"short" in r.stderr, r
    untouched(arena, {"short"})


def test_exec_unknown_exit_kind_is_a_clear_error(cli, box):
    with Hijack(cli, box, "exitkind"):
        r = timed(cli, "exec", box, "--", "true")
    assert r.returncode == 125 and b"invalid exit frame" in r.stderr, r
    alive(cli, box)


def test_exec_malformed_frames_end_in_bounded_time(cli, box):
    with Hijack(cli, box, "malformed"):
        r = timed(cli, "exec", box, "--", "true")
    assert r.returncode == 125 and r.stderr.startswith(b"boxlite: "), r
    assert b"nobody" not in r.stdout and b"v9!" not in r.stdout, r
    alive(cli, box)


def test_exec_output_past_the_credit_stays_bounded(cli, box):
    """2 MiB of STDOUT against 256 KiB of credit: the library never buffers more than one
    window per stream (src/lib/box/exec.c); a reader that keeps up may take it all, a slow one
    gets a clear error."""
    with Hijack(cli, box, "overcredit"):
        r = timed(cli, "exec", box, "--", "true")
    if r.returncode == 0:
        assert r.stdout == b"A" * (2 << 20), len(r.stdout)
    else:
        assert r.returncode == 125 and b"credit" in r.stderr, r
    alive(cli, box)


def test_exec_one_frame_of_four_windows_is_refused(cli, box):
    with Hijack(cli, box, "hugechunk"):
        r = timed(cli, "exec", box, "--", "true")
    assert r.returncode == 125 and b"credit" in r.stderr, r
    assert r.stdout == b"", len(r.stdout)
    alive(cli, box)


@pytest.fixture
def own_box(cli):
    """A box of the test's own, for attacks that leave the channel unusable."""
    name = "hostile-box-own"
    cli.run("rm", "-f", name)
    ok(cli.run("create", "--name", name, "-d"))
    ok(cli.run("start", name, timeout=300))
    ok(cli.run("cp", str(TOOL), f"{name}:{IN_BOX}"))
    yield name
    cli.run("rm", "-f", name, timeout=120)


def fails_cleanly(cli, box):
    """The box may be unusable now, but a call ends with a clear error and rm works."""
    r = timed(cli, "exec", box, "--", "echo", "alive")
    assert r.returncode in (0, 125), r
    assert r.returncode == 0 or r.stderr.startswith(b"boxlite: "), r
    ok(cli.run("rm", "-f", box, timeout=120))
    assert box not in cli.run("ls").stdout.decode()


def test_oversized_frame_fails_the_call_and_the_box_can_be_removed(cli, own_box):
    """A 4 GiB frame header loses the framing: the call fails, the box can still go."""
    with Hijack(cli, own_box, "bigframe"):
        r = timed(cli, "exec", own_box, "--", "true")
    assert r.returncode == 125 and r.stderr.startswith(b"boxlite: "), r
    fails_cleanly(cli, own_box)


def test_a_hello_of_another_version_mid_connection(cli, own_box):
    """The shim keeps the agent's real HELLO: a junk one from the guest changes nothing, so
    once the hijacker lets go the box answers new clients as before."""
    with Hijack(cli, own_box, "badhello"):
        r = timed(cli, "exec", own_box, "--", "true")
    assert r.returncode in (0, 125), r
    r = timed(cli, "exec", own_box, "--", "echo", "alive")
    assert r.returncode == 0 and r.stdout == b"alive\n", r
    fails_cleanly(cli, own_box)


# ---- volumes: what guest root does on a 9p volume stays in the guest's view ----

def test_volume_setuid_chown_mknod_do_not_reach_the_host(cli, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "host.txt").write_text("host\n")
    os.chmod(vol / "host.txt", 0o644)
    name = "hostile-vol-box"
    cli.run("rm", "-f", name)
    ok(cli.run("create", "--name", name, "-v", f"{vol}:/data"))
    try:
        ok(cli.run("start", name, timeout=300))
        r = ok(cli.run("exec", name, "--", "sh", "-c",
                       "cd /data && echo x > f && chown 1234:1234 f && chmod 4755 f && "
                       "mkdir d && chmod 3777 d && mknod dev c 1 3 && mkfifo fifo && "
                       "chown 4321 host.txt && chmod 6777 host.txt && "
                       "stat -c '%n %a %u %F' f d dev fifo host.txt && echo ok >> host.txt"))
        seen = r.stdout.decode().splitlines()
        # the guest sees what it asked for (kept in xattrs on the host) ...
        assert seen[:2] == ["f 4755 1234 regular file", "d 3777 0 directory"], seen
        assert seen[2].startswith("dev ") and "character special" in seen[2], seen
        assert seen[4] == "host.txt 6777 4321 regular file", seen
    finally:
        cli.run("rm", "-f", name, timeout=120)
    # ... the host inodes are plain files and directories of the user running boxlite
    for n in ("f", "d", "dev", "fifo", "host.txt"):
        st = os.lstat(vol / n)
        assert st.st_mode & 0o7000 == 0, (n, oct(st.st_mode))
        assert stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode), (n, oct(st.st_mode))
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), n
        assert st.st_mode & 0o022 == 0, (n, oct(st.st_mode))
    assert stat.S_IMODE(os.lstat(vol / "host.txt").st_mode) == 0o644
    assert (vol / "host.txt").read_text() == "host\nok\n"
    assert (vol / "f").read_text() == "x\n"


def test_volume_without_user_xattrs_keeps_guest_metadata_in_files(cli, tmp_path):
    """ramfs has no user xattrs: the volume falls back to mapped-file (.virtfs_metadata).
    The mount lives in a private mount namespace that the box's shim and QEMU inherit."""
    if os.geteuid() != 0 or subprocess.run(["which", "unshare"], capture_output=True).returncode:
        pytest.skip("needs root and unshare to mount a ramfs")
    vol, name = tmp_path / "ramvol", "hostile-ramfs-box"
    vol.mkdir()
    cli.run("rm", "-f", name)
    script = f"""
B={BOXLITE}; V={vol}
mount -t ramfs none "$V" || exit 90
trap '$B rm -f {name} >/dev/null 2>&1' EXIT
echo host > "$V/host.txt"
$B create --name {name} -v "$V:/data" >/dev/null && $B start {name} >/dev/null || exit 91
$B exec {name} -- sh -c 'cd /data && echo x > f && chown 1234 f && chmod 4755 f &&
    mknod dev c 1 3 && cat host.txt && stat -c "guest %n %a %u %F" f dev' || exit 92
stat -c 'host %n %a %u %F' "$V/f" "$V/dev" "$V/host.txt"
ls -a "$V" | tr '\\n' ' '
"""
    # Root's jail serves volumes through idmapped mounts, which ramfs lacks: jailed, the start
    # is refused naming the reason; the mapped-file fallback is QEMU's, checked unjailed.
    jailed = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            capture_output=True, env=cli.env, timeout=300)
    assert jailed.returncode == 91, (jailed.returncode, jailed.stdout, jailed.stderr)
    assert b"has no idmapped mounts" in jailed.stderr, jailed.stderr
    env = dict(cli.env, BOXLITE_JAIL="0")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, env=env, timeout=300)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    out = r.stdout.decode().splitlines()
    assert out[:3] == ["host", "guest f 4755 1234 regular file",
                       "guest dev 644 0 character special file"], out
    uid = os.getuid()
    assert out[3:6] == [f"host {vol}/f 600 {uid} regular file",
                        f"host {vol}/dev 600 {uid} regular empty file",
                        f"host {vol}/host.txt 644 {uid} regular file"], out
    assert ".virtfs_metadata" in out[6].split(), out
