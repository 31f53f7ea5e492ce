"""test_memory.py — guest RAM on real VMs: forks of one full snapshot share its clean pages
through the page cache (copy-on-write from the snapshot's RAM file), a fork's writes reach
neither its sibling nor the file, a snapshot of a restored box (RAM streamed) restores and
forks, and memory a guest frees goes back to the host (virtio-balloon free page reporting).
Bounds are generous; bench/density and bench/snapshot print the real figures."""
import hashlib
import os
import pathlib
import subprocess
import time

import pytest

MIB = 1 << 20
BALLAST = "head -c 67108864 /dev/urandom > /dev/shm/ballast; sync"


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def out(r):
    return ok(r).stdout.decode().strip()


def qemu_pid(home, box_id):
    """The pid of the box's QEMU: the qemu process whose working directory is the box's."""
    want = str(pathlib.Path(home) / "boxes" / box_id)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if (open(f"/proc/{pid}/comm").read().startswith("qemu-system")
                    and os.readlink(f"/proc/{pid}/cwd") == want):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no QEMU for box {box_id}")


def rollup(pid):
    """Rss and Pss of the process, bytes."""
    r = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        k, _, v = line.partition(":")
        if k in ("Rss", "Pss"):
            r[k] = int(v.split()[0]) * 1024
    return r


def mapping(pid, path):
    """Rss and Pss of the process's mappings of file path, bytes (zeros when not mapped)."""
    r, inside = {"Rss": 0, "Pss": 0}, False
    for line in open(f"/proc/{pid}/smaps"):
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            inside = len(head) >= 6 and head[5] == path
        elif inside and head and head[0] in ("Rss:", "Pss:"):
            r[head[0][:-1]] += int(head[1]) * 1024
    return r


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def shared_then_private(cli, home, forks, ram, md5, before):
    """Two forks of one full snapshot map its RAM file ram (digest before) and share its clean
    pages (counted half to each); a write in one reaches neither the other nor the file, and
    pages a fork's balloon reports freed are never punched out of the file."""
    maps = [mapping(qemu_pid(home, f), ram) for f in forks]
    assert all(m["Rss"] >= 48 * MIB for m in maps), maps
    assert sum(m["Pss"] for m in maps) < 0.7 * sum(m["Rss"] for m in maps), maps
    ok(cli.run("exec", forks[0], "--", "sh", "-c", BALLAST))
    assert out(cli.run("exec", forks[0], "--", "md5sum", "/dev/shm/ballast")).split()[0] != md5
    assert out(cli.run("exec", forks[1], "--", "md5sum", "/dev/shm/ballast")).split()[0] == md5
    ok(cli.run("exec", forks[0], "--", "sh", "-c", "rm /dev/shm/ballast; sleep 6"))
    assert out(cli.run("exec", forks[1], "--", "md5sum", "/dev/shm/ballast")).split()[0] == md5
    assert sha256(ram) == before


@pytest.fixture
def box(cli, request):
    name = request.node.name[:40]
    box_id = out(cli.run("create", "--name", name))
    made = []
    yield name, box_id, made
    for b in made:
        cli.run("rm", "-f", b)
    cli.run("rm", "-f", name)


def test_forks_share_clean_ram_and_keep_writes_private(cli, home, box):
    name, box_id, made = box
    ok(cli.run("start", name))
    ok(cli.run("exec", name, "--", "sh", "-c", BALLAST))
    md5 = out(cli.run("exec", name, "--", "md5sum", "/dev/shm/ballast")).split()[0]
    ok(cli.run("snapshot", "create", "--memory", name, "base"))
    ram = str(pathlib.Path(home) / "boxes" / box_id / "snapshots" / "base" / "ram")
    before = sha256(ram)
    ok(cli.run("stop", name))
    # sharing the saved file itself is opt-in (docs/security.md: QEMU 7.2 opens it read-write)
    forks = out(cli.run("fork", "-n", "2", name, "base", timeout=300,
                        env={"BOXLITE_SHARED_RAM": "1"})).split()
    made.extend(forks)
    assert len(forks) == 2
    for f in forks:  # each reads the whole ballast: its pages come from the file
        assert out(cli.run("exec", f, "--", "md5sum", "/dev/shm/ballast")).split()[0] == md5
    total = [rollup(qemu_pid(home, f)) for f in forks]
    assert sum(t["Pss"] for t in total) < 0.9 * sum(t["Rss"] for t in total), total
    shared_then_private(cli, home, forks, ram, md5, before)
    assert b"Failed to fallocate" in (pathlib.Path(home) / "boxes" / forks[0] / "qemu.log").read_bytes()


def test_by_default_a_box_maps_its_own_copy_of_saved_ram(cli, home, box):
    """QEMU 7.2 opens even a private mapping's file read-write: by default a fork (and a box
    restored from a template) maps its own copy of the saved RAM, never the saved file every
    box started from it reads — a compromised QEMU could write that one. The copy is the box's
    RAM file like a cold box's: it goes with the QEMU, and the fork's own snapshots copy it."""
    name, box_id, made = box
    ok(cli.run("start", name))
    ok(cli.run("snapshot", "create", "--memory", name, "base"))
    ram = str(pathlib.Path(home) / "boxes" / box_id / "snapshots" / "base" / "ram")
    before = sha256(ram)
    ok(cli.run("stop", name))
    forks = out(cli.run("fork", "-n", "1", name, "base", timeout=300)).split()
    made.extend(forks)
    pid = qemu_pid(home, forks[0])
    own = pathlib.Path(home) / "boxes" / forks[0] / "ram"
    assert ram not in open(f"/proc/{pid}/maps").read()
    assert ram not in open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    assert mapping(pid, str(own))["Rss"] > 0
    ok(cli.run("exec", forks[0], "--", "sh", "-c", BALLAST))
    ok(cli.run("snapshot", "create", "--memory", forks[0], "again"))
    assert (pathlib.Path(home) / "boxes" / forks[0] / "snapshots" / "again" / "ram").exists()
    ok(cli.run("stop", forks[0]))
    assert not own.exists()
    assert sha256(ram) == before


def x_cow(qemu):
    """Whether the QEMU boxes use (qemu, else the one on PATH) has memory-backend-file x-cow."""
    import shutil
    path = qemu or shutil.which("qemu-system-x86_64")
    return bool(path) and b"\0x-cow\0" in pathlib.Path(path).read_bytes()


def our_qemu():
    """The QEMU our wheel carries (scripts/build-qemu.sh's cache: `make test` builds it before
    the suite), or None when it has not been built on this machine."""
    root = pathlib.Path(__file__).resolve().parents[2]
    r = subprocess.run([str(root / "scripts" / "build-qemu.sh"), "--print-dir"],
                       capture_output=True, text=True, timeout=60)
    q = pathlib.Path(r.stdout.strip().splitlines()[-1]) / "bin" / "qemu-system-x86_64" \
        if r.returncode == 0 and r.stdout.strip() else None
    return str(q) if q and q.exists() else None


def fds_of(pid, path):
    """The open flags (fdinfo) of each fd of pid that names path."""
    flags = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                for line in open(f"/proc/{pid}/fdinfo/{fd}"):
                    if line.startswith("flags:"):
                        flags.append(int(line.split()[1], 8))
        except OSError:
            continue
    return flags


def test_our_qemu_maps_saved_ram_itself_read_only(cli, home, box):
    """With our QEMU (memory-backend-file x-cow, scripts/qemu-patches/x-cow.patch) forks map
    the snapshot's RAM file itself, so its clean pages are shared by default, yet QEMU holds it
    only read-only (its fd O_RDONLY, the jail's bind read-only): a QEMU taken over by its guest
    cannot write what its siblings read. Writes stay private; freed pages reported by the
    balloon drop the private copy and never touch the file."""
    qemu = our_qemu()
    if not qemu:
        pytest.skip("our QEMU is not built here (make wheel builds it; `make test` does)")
    env = {"BOXLITE_QEMU": qemu}
    name, box_id, made = box
    ok(cli.run("start", name, env=env))
    ok(cli.run("exec", name, "--", "sh", "-c", BALLAST))
    md5 = out(cli.run("exec", name, "--", "md5sum", "/dev/shm/ballast")).split()[0]
    ok(cli.run("snapshot", "create", "--memory", name, "base", env=env))
    ram = str(pathlib.Path(home) / "boxes" / box_id / "snapshots" / "base" / "ram")
    before = sha256(ram)
    ok(cli.run("stop", name))
    forks = out(cli.run("fork", "-n", "2", name, "base", timeout=300, env=env)).split()
    made.extend(forks)
    pids = [qemu_pid(home, f) for f in forks]
    for pid in pids:
        assert "x-cow=on" in open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
        flags = fds_of(pid, ram)
        assert flags and all(f & os.O_ACCMODE == os.O_RDONLY for f in flags), flags
        mounts = [m.split() for m in open(f"/proc/{pid}/mountinfo")]
        assert [m[5].split(",")[0] for m in mounts if m[4] == ram] == ["ro"], ram
    for f in forks:
        assert out(cli.run("exec", f, "--", "md5sum", "/dev/shm/ballast")).split()[0] == md5
    shared_then_private(cli, home, forks, ram, md5, before)
    log = (pathlib.Path(home) / "boxes" / forks[0] / "qemu.log").read_bytes()
    assert b"Failed to fallocate" not in log and b"Failed to discard" not in log, log[-2000:]


def test_our_qemu_maps_a_templates_ram_itself_and_snapshots_write_their_own(cli, home, box):
    """With our QEMU a box restored from a warm template maps the template's RAM file itself,
    copy-on-write and read-only (no copy of its own), so boxes of one template share its clean
    pages. A full snapshot of such a box is a RAM file of its own — the template's pages plus
    the ones the box wrote, read from QEMU's /proc by the shim — and a device-state stream
    without RAM (our QEMU skips an x-cow block under x-ignore-shared); forks of it see the
    box's memory, and the template's file is never written."""
    qemu = our_qemu()
    if not qemu:
        pytest.skip("our QEMU is not built here (make wheel builds it; `make test` does)")
    env = {"BOXLITE_QEMU": qemu}
    name, box_id, made = box
    other = out(cli.run("create", "--name", name[:30] + "-2"))
    made.append(other)
    ok(cli.run("start", name, env=env))
    ok(cli.run("start", other, env=env))
    pids = [qemu_pid(home, b) for b in (box_id, other)]
    trams = {m.split()[-1] for pid in pids for m in open(f"/proc/{pid}/maps")
             if "/templates/" in m and m.rstrip().endswith("/ram")}
    assert len(trams) == 1, trams
    tram = trams.pop()
    before = sha256(tram)
    for pid in pids:
        assert "x-cow=on" in open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
        flags = fds_of(pid, tram)
        assert flags and all(f & os.O_ACCMODE == os.O_RDONLY for f in flags), flags
    assert not (pathlib.Path(home) / "boxes" / box_id / "ram").exists()
    maps = [mapping(pid, tram) for pid in pids]
    assert all(m["Rss"] >= 16 * MIB for m in maps), maps
    assert sum(m["Pss"] for m in maps) < 0.7 * sum(m["Rss"] for m in maps), maps

    ok(cli.run("exec", name, "--", "sh", "-c", BALLAST))
    md5 = out(cli.run("exec", name, "--", "md5sum", "/dev/shm/ballast")).split()[0]
    ok(cli.run("snapshot", "create", "--memory", name, "base", env=env))
    sdir = pathlib.Path(home) / "boxes" / box_id / "snapshots" / "base"
    assert (sdir / "memory").stat().st_size < 16 * MIB, (sdir / "memory").stat().st_size
    assert (sdir / "ram").stat().st_blocks * 512 >= 64 * MIB
    ok(cli.run("stop", name))
    forks = out(cli.run("fork", "-n", "1", name, "base", timeout=300, env=env)).split()
    made.extend(forks)
    assert out(cli.run("exec", forks[0], "--", "md5sum", "/dev/shm/ballast")).split()[0] == md5
    assert out(cli.run("exec", other, "--", "sh", "-c", "test -e /dev/shm/ballast || echo none")) \
        == "none"
    assert sha256(tram) == before


def test_qemu_log_is_capped(cli, home, box):
    """A guest can make QEMU write to qemu.log (a fork's refused free page reports): the
    monitor keeps it under 1 MiB while the box runs."""
    name, box_id, _ = box
    ok(cli.run("start", name))
    log = pathlib.Path(home) / "boxes" / box_id / "qemu.log"
    with open(log, "ab") as f:  # as QEMU would: appending
        f.write((b"y" * 99 + b"\n") * 30000)
    deadline = time.monotonic() + 10
    while log.stat().st_size > MIB + 4096 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert log.stat().st_size <= MIB + 4096, log.stat().st_size
    assert log.read_bytes().rstrip().endswith(b"later lines dropped]")
    assert out(cli.run("exec", name, "--", "echo", "alive")) == "alive"


def test_ram_file_of_a_killed_monitor_is_dropped(cli, home, box):
    name, box_id, _ = box
    ok(cli.run("start", "--cold", name))  # a RAM file of its own with any QEMU
    boxdir = pathlib.Path(home) / "boxes" / box_id
    ram = boxdir / "ram"
    assert ram.exists()
    ok(cli.run("doctor", "--fix"))  # a running box's RAM file is QEMU's: left alone
    assert ram.exists()
    pids = [int(p) for p in filter(str.isdigit, os.listdir("/proc"))
            if os.path.exists(f"/proc/{p}/cwd") and os.readlink(f"/proc/{p}/cwd") == str(boxdir)]
    assert len(pids) == 2, pids  # the monitor and QEMU
    for p in pids:
        os.kill(p, 9)
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ram.exists()  # nobody deleted it
    r = ok(cli.run("doctor", "--fix"))
    assert not ram.exists(), r.stdout
    ok(cli.run("start", name))
    assert out(cli.run("exec", name, "--", "echo", "back")) == "back"


def test_snapshot_of_a_restored_box_streams_its_ram(cli, home, box):
    name, box_id, made = box
    ok(cli.run("start", name))
    ok(cli.run("snapshot", "create", "--memory", name, "one"))
    ok(cli.run("stop", name))
    # RAM now the snapshot's file itself, private (opt-in: by default its own copy, shared)
    ok(cli.run("snapshot", "restore", name, "one", env={"BOXLITE_SHARED_RAM": "1"}))
    ok(cli.run("exec", name, "--", "sh", "-c", "echo again > /dev/shm/mark"))
    ok(cli.run("snapshot", "create", "--memory", name, "two"))
    sdir = pathlib.Path(home) / "boxes" / box_id / "snapshots"
    # with x-cow (our QEMU) the shim writes the restored box's RAM file itself (cowram.c)
    cow = x_cow(os.environ.get("BOXLITE_QEMU"))
    assert (sdir / "one" / "ram").exists() and (sdir / "two" / "ram").exists() == cow
    f = out(cli.run("fork", name, "two", timeout=300))
    made.append(f)
    assert out(cli.run("exec", f, "--", "cat", "/dev/shm/mark")) == "again"
    ok(cli.run("stop", name))
    ok(cli.run("snapshot", "restore", name, "two"))
    assert out(cli.run("exec", name, "--", "cat", "/dev/shm/mark")) == "again"


def wait_pss(pid, below, seconds):
    deadline = time.monotonic() + seconds
    pss = rollup(pid)["Pss"]
    while pss >= below and time.monotonic() < deadline:
        time.sleep(1)
        pss = rollup(pid)["Pss"]
    return pss


def test_freed_guest_memory_returns_to_the_host(cli, home, box):
    name, box_id, _ = box
    ok(cli.run("start", name))
    pid = qemu_pid(home, box_id)
    ok(cli.run("exec", name, "--", "sh", "-c",
               "mkdir -p /mnt/big && mount -t tmpfs -o size=320m tmpfs /mnt/big && "
               "head -c 314572800 /dev/zero > /mnt/big/fill && sync"))
    full = rollup(pid)["Pss"]
    ok(cli.run("exec", name, "--", "sh", "-c", "rm /mnt/big/fill && umount /mnt/big"))
    # the guest reports freed 2 MiB blocks a few seconds later; QEMU punches them out
    after = wait_pss(pid, full - 200 * MIB, 30)
    assert full - after >= 200 * MIB, (full // MIB, after // MIB)


def code_buffer(pid):
    """Rss of QEMU's TCG code buffer (its one anonymous rwx mapping), bytes."""
    rss, inside = 0, False
    for line in open(f"/proc/{pid}/smaps"):
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0] and len(head) >= 5:
            inside = len(head) == 5 and head[1] == "rwxp"
        elif inside and head and head[0] == "Rss:":
            rss += int(head[1]) * 1024
    return rss


def wait_code_buffer(pid, below, seconds):
    deadline = time.monotonic() + seconds
    rss = code_buffer(pid)
    while rss >= below and time.monotonic() < deadline:
        time.sleep(0.5)
        rss = code_buffer(pid)
    return rss


def accel_of(cli, name):
    import json
    return json.loads(out(cli.run("inspect", name)))[0].get("accel")


def test_an_idle_box_gives_back_its_translation_cache(cli, home, box):
    """Under TCG with our QEMU (x-tb-discard, scripts/qemu-patches), once no client has used a
    box for BOXLITE_TB_IDLE_MS its QEMU drops its translations and hands the code buffer's
    pages back — never while a client's process runs, however quiet; the box works on
    (translating again), and the next quiet spell gives them back again."""
    qemu = our_qemu()
    if not qemu:
        pytest.skip("our QEMU is not built here (make wheel builds it; `make test` does)")
    name, box_id, _ = box
    ok(cli.run("start", name, env={"BOXLITE_QEMU": qemu, "BOXLITE_TB_IDLE_MS": "2000"}))
    if accel_of(cli, name) != "tcg":
        pytest.skip("the box runs under KVM: there is no translation cache")
    pid = qemu_pid(home, box_id)
    # a process of a client runs quietly for 3x the idle time: nothing is dropped meanwhile
    proc = cli.popen("exec", name, "--", "sh", "-c", "sleep 6; echo done", stdout=subprocess.PIPE)
    samples = []
    try:
        while proc.poll() is None and len(samples) < 60:
            samples.append(code_buffer(pid))
            time.sleep(0.25)
        assert proc.wait(timeout=60) == 0 and proc.stdout.read() == b"done\n"
    finally:
        proc.kill()
        proc.wait()
    assert len(samples) >= 16 and min(samples) >= 12 * MIB, [x // MIB for x in samples]
    held = code_buffer(pid)
    # the code buffer is in 2 MiB pages (QEMU asks for huge pages): a discarded buffer holds
    # one or two of them again within seconds (the idle guest's timer code, khugepaged)
    dropped = wait_code_buffer(pid, 8 * MIB, 30)
    assert dropped < 8 * MIB, (held // MIB, dropped // MIB)
    assert out(cli.run("exec", name, "--", "sh", "-c", "echo again")) == "again"
    again = code_buffer(pid)
    assert again >= dropped + 4 * MIB, (dropped // MIB, again // MIB)
    below = min(8 * MIB, again - 4 * MIB)
    assert wait_code_buffer(pid, below, 30) < below, (dropped // MIB, again // MIB)
    assert out(cli.run("exec", name, "--", "cat", "/proc/loadavg"))
    log = (pathlib.Path(home) / "boxes" / box_id / "shim.log").read_text(errors="replace")
    assert "its translations" not in log, log[-2000:]


def test_a_qemu_without_tb_discard_is_asked_once(cli, home, box):
    """A QEMU without x-tb-discard (Debian's) answers that it has no such command: its box's
    monitor says so once in shim.log, never asks again, and the box works on."""
    if x_cow(os.environ.get("BOXLITE_QEMU")):
        pytest.skip("the suite's QEMU is ours: it has x-tb-discard")
    name, box_id, _ = box
    ok(cli.run("start", name, env={"BOXLITE_TB_IDLE_MS": "1000"}))
    if accel_of(cli, name) != "tcg":
        pytest.skip("the box runs under KVM: nothing is asked")
    log = pathlib.Path(home) / "boxes" / box_id / "shim.log"
    deadline = time.monotonic() + 20
    while "cannot drop" not in log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert out(cli.run("exec", name, "--", "echo", "on")) == "on"
    time.sleep(3)
    assert out(cli.run("exec", name, "--", "echo", "still")) == "still"
    text = log.read_text(errors="replace")
    assert text.count("cannot drop its translations") == 1, text[-2000:]
    assert "x-tb-discard" in text, text[-2000:]
