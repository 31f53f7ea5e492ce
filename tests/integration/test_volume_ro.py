"""test_volume_ro.py — a read-only volume looks read-only and stays so: guest root's remount
(plain or bind) to rw is refused, /proc/mounts keeps saying ro, nothing is written, and a
read-write volume beside it stays writable and remountable."""


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def opts(out, mountpoint):
    """The mount options /proc/mounts lists for mountpoint (the last such line)."""
    lines = [f for f in (ln.split() for ln in out.splitlines()) if len(f) > 3 and f[1] == mountpoint]
    assert lines, (mountpoint, out)
    return lines[-1][3].split(",")


def test_guest_root_cannot_make_a_read_only_volume_writable(cli, tmp_path):
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    (ro / "keep.txt").write_text("read only\n")
    name = "ro-vol-box"
    cli.run("rm", "-f", name)
    try:
        r = ok(cli.run("run", "--rm", "--name", name, "-v", f"{ro}:/ro:ro", "-v", f"{rw}:/rw",
                       "--", "sh", "-c",
                       "id -u; cat /proc/mounts; echo ===; "
                       "mount -o remount,rw /ro; echo remount=$?; "
                       "mount -o remount,bind,rw /ro; echo rebind=$?; "
                       "echo x > /ro/new.txt; echo write=$?; "
                       "mount -o remount,rw /rw; echo rwremount=$?; "
                       "echo y > /rw/new.txt; echo rwwrite=$?; "
                       "echo ===; cat /proc/mounts", timeout=300))
    finally:
        cli.run("rm", "-f", name)
    out = r.stdout.decode()
    before, steps, after = out.split("===\n")
    assert before.splitlines()[0] == "0"  # guest root
    assert "ro" in opts(before, "/ro") and "rw" in opts(before, "/rw")
    rc = dict(ln.split("=") for ln in steps.splitlines() if "=" in ln)
    assert rc["remount"] != "0" and rc["rebind"] != "0" and rc["write"] != "0", steps
    assert rc["rwremount"] == "0" and rc["rwwrite"] == "0", steps
    assert "ro" in opts(after, "/ro") and "rw" not in opts(after, "/ro"), after
    assert sorted(p.name for p in ro.iterdir()) == ["keep.txt"]
    assert (rw / "new.txt").read_text() == "y\n"
