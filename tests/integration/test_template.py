"""test_template.py — warm templates (docs/templates.md) on real VMs through the CLI: boxes
restored from one template have identities of their own and only their own disk; a stale,
truncated or damaged template is passed over (cold boot, rebuilt); two processes starting the
first box of a shape at once build it once; --cold and BOXLITE_TEMPLATES=0 boot cold; and one
cold-boot test of each kind (lifecycle, exec, network, snapshot) now that the suite's boxes
start from templates.

A guest restored from a template shows it in /proc/cmdline ("boxlite.template=1"): the kernel
booted with the template's command line, which names no box; a cold boot's names the box."""
import json
import os
import pathlib
import subprocess
import time

import pytest

from boxlite_paths import BOXLITE
from boxlite_paths import CLI

TEMPLATE_ARG = "boxlite.template=1"


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def out(r):
    return ok(r).stdout.decode().strip()


@pytest.fixture(scope="module")
def thome(tmp_path_factory):
    return tmp_path_factory.mktemp("template-home")


@pytest.fixture(scope="module")
def tcli(box_env, thome):
    """A home of this module's own: the tests below make, break and count its templates."""
    env = dict(box_env)
    env["BOXLITE_HOME"] = str(thome)
    env.pop("BOXLITE_TEMPLATES", None)
    return CLI(env)


def templates(tcli):
    return json.loads(out(tcli.run("template", "ls", "--format", "json")))


def only_template(tcli, thome):
    ts = templates(tcli)
    assert len(ts) == 1 and ts[0]["usable"], ts
    return thome / "templates" / ts[0]["id"]


def fresh(tcli):
    """No template at all: the next start of the shape builds one."""
    ok(tcli.run("template", "prune", "--all"))
    assert templates(tcli) == []


def warm(tcli, thome):
    """One usable template for the default shape (1 cpu, 512 MiB, network, no volumes)."""
    r = ok(tcli.run("run", "--rm", "--", "cat", "/proc/cmdline"))
    assert TEMPLATE_ARG in r.stdout.decode(), r.stdout  # even the first start restores it
    return only_template(tcli, thome)


@pytest.fixture
def boxes(tcli):
    made = []

    def make(name, *opts):
        ok(tcli.run("create", "--name", name, *opts))
        made.append(name)
        return name

    yield make
    for b in made:
        tcli.run("rm", "-f", b)


def guest(tcli, box, script):
    return out(tcli.run("exec", box, "--", "sh", "-c", script))


def guest_clock(tcli, box):
    """The guest's wall clock to the microsecond (busybox date has only seconds)."""
    lines = guest(tcli, box, "adjtimex | grep time.tv_").split("\n")
    f = {k.strip(): int(v) for k, v in (line.split(":", 1) for line in lines)}
    return f["time.tv_sec"] + f["time.tv_usec"] / 1e6


def test_two_boxes_from_one_template_have_their_own_identity_and_disk(tcli, thome, boxes):
    tdir = warm(tcli, thome)
    a, b = boxes("tmpl-a"), boxes("tmpl-b")
    for box in (a, b):
        ok(tcli.run("start", box))
        # the clock first: stepped to the host's at the restore (a TCG guest's clock drifts
        # later, as a cold-booted one's does: its TSC rate is read from /proc/cpuinfo)
        before = time.time()
        t = guest_clock(tcli, box)
        after = time.time()
        assert before - 1 <= t <= after + 1, (before, t, after)
        assert TEMPLATE_ARG in guest(tcli, box, "cat /proc/cmdline")
    assert only_template(tcli, thome) == tdir  # both restored it; none was built

    rnd = {x: guest(tcli, x, "od -An -tx1 -N32 /dev/urandom | tr -d ' \\n'") for x in (a, b)}
    assert len(rnd[a]) == 64 and rnd[a] != rnd[b]
    macs = {x: guest(tcli, x, "cat /sys/class/net/eth0/address") for x in (a, b)}
    assert macs[a] != macs[b]
    for x in (a, b):
        assert guest(tcli, x, "hostname") == x
        assert f"\t{x}" in guest(tcli, x, "cat /etc/hosts")

    guest(tcli, a, "echo only-in-a > /root/mine; sync")
    assert guest(tcli, a, "cat /root/mine") == "only-in-a"
    assert tcli.run("exec", b, "--", "cat", "/root/mine").returncode != 0
    # the network works after a restore (the shim's NAT: DNS server and gateway configured)
    assert "default via 10.0.2.2" in guest(tcli, b, "ip route")


def test_the_files_each_start_rewrites_are_never_written_through(tcli, thome, boxes):
    """/etc/hosts is rewritten at every start (the hostname): in place when it is a plain file
    of its own, replaced when the box made it a symlink, a hard link or a FIFO, so a start
    never writes through it to another file and never blocks on it (src/agent/net.c)."""
    warm(tcli, thome)
    box = boxes("tmpl-hosts")
    ok(tcli.run("start", box))

    def restart():
        ok(tcli.run("stop", box))
        ok(tcli.run("start", box, timeout=90))
        assert guest(tcli, box, "test -f /etc/hosts && ! test -L /etc/hosts && echo plain") == "plain"
        assert f"\t{box}" in guest(tcli, box, "cat /etc/hosts")

    # a plain file: overwritten in place (its mode stays the box's) and cut to the new length
    guest(tcli, box, "head -c 5000 /dev/zero | tr '\\0' x > /etc/hosts; chmod 604 /etc/hosts")
    restart()
    assert guest(tcli, box, "stat -c %a /etc/hosts") == "604"
    assert "x" not in guest(tcli, box, "cat /etc/hosts")
    # a symlink, a hard link, a FIFO: replaced, the other file untouched
    guest(tcli, box, "echo target > /root/target; rm /etc/hosts; ln -s /root/target /etc/hosts")
    restart()
    assert guest(tcli, box, "cat /root/target") == "target"
    guest(tcli, box, "echo twin > /root/twin; rm /etc/hosts; ln /root/twin /etc/hosts")
    restart()
    assert guest(tcli, box, "cat /root/twin") == "twin"
    guest(tcli, box, "rm /etc/hosts; mkfifo /etc/hosts; sync")
    restart()


def skip_unless_spares():
    """Spares are for a QEMU without x-cow: ours maps the template's RAM file itself."""
    qemu = os.environ.get("BOXLITE_QEMU")
    if qemu and b"x-cow" in pathlib.Path(qemu).read_bytes():
        pytest.skip("this QEMU maps the template's RAM file itself (x-cow): no spares")


def spares(tdir, timeout=30):
    """The template's spare RAM files once there is exactly one (a box's shim makes it)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = sorted((tdir / "spares").glob("*.ram")) if (tdir / "spares").is_dir() else []
        if len(found) == 1:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no single spare in {tdir}/spares: {found}")


def test_a_warm_start_takes_the_spare_and_its_monitor_makes_the_next(tcli, thome, boxes):
    """template/spare.c: the box's RAM file is the spare itself (renamed in, not copied), and
    the next spare appears once that box runs; the template's size counts it."""
    skip_unless_spares()
    tdir = warm(tcli, thome)
    (spare,) = spares(tdir)
    inode = spare.stat().st_ino
    box = boxes("tmpl-spare")
    ok(tcli.run("start", box))
    box_id = json.loads(out(tcli.run("inspect", box)))[0]["id"]
    assert (thome / "boxes" / box_id / "ram").stat().st_ino == inode
    (after,) = spares(tdir)
    assert after.stat().st_ino != inode
    assert guest(tcli, box, "echo works") == "works"
    assert templates(tcli)[0]["size"] >= 2 * (tdir / "ram").stat().st_blocks * 512 * 0.9


def test_a_spare_of_another_host_boot_or_template_build_is_never_used(tcli, thome, boxes):
    """Spares are written without fsync: one named for another host boot, or for an earlier
    build of the template (another memory file), may hold anything and is never used; the
    next refill removes it. Here they hold garbage where the guest kernel lives: used, the
    restored guest could not answer."""
    skip_unless_spares()
    tdir = warm(tcli, thome)
    spares(tdir)
    for f in (tdir / "spares").glob("*.ram"):
        f.unlink()
    boot = pathlib.Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    mem = (tdir / "memory").stat()
    size = (tdir / "ram").stat().st_size
    bad = [f"00000000-0000-0000-0000-000000000000-{mem.st_ino}-{mem.st_mtime_ns}.other-boot.ram",
           f"{boot}-{mem.st_ino + 1}-{mem.st_mtime_ns}.other-build.ram",
           f"{boot}-{mem.st_ino}-{mem.st_mtime_ns + 1}.other-build.ram"]
    for name in bad:
        with open(tdir / "spares" / name, "wb") as f:
            f.truncate(size)
            for off in range(0, 64 << 20, 1 << 20):  # the kernel's image and early memory
                f.seek(off)
                f.write(os.urandom(1 << 20))
    box = boxes("tmpl-badspare")
    r = ok(tcli.run("start", box))
    # restored, not rebuilt after a failed restore (what a garbage RAM file leads to)
    assert r.stderr == b"", r.stderr
    assert (tdir / "memory").stat().st_mtime_ns == mem.st_mtime_ns
    assert guest(tcli, box, "echo works") == "works"
    (made,) = spares(tdir)
    assert made.name not in bad


def test_other_disk_size_and_volumes_are_attached_after_the_restore(tcli, thome, tmp_path):
    warm(tcli, thome)
    r = ok(tcli.run("run", "--rm", "--disk-size", "2", "--", "sh", "-c",
                    "cat /proc/cmdline; df -k / | tail -1"))
    text = r.stdout.decode().strip()
    assert TEMPLATE_ARG in text and r.stderr == b"", (text, r.stderr)
    size_kib = int(text.split("\n")[-1].split()[1])
    assert size_kib > 1800 * 1024, text  # the box disk's 2 GiB, not the template's blank one

    (tmp_path / "in").write_text("from the host\n")
    for _ in range(2):  # the first builds the template of the one-volume shape, the second restores it
        r = ok(tcli.run("run", "--rm", "-v", f"{tmp_path}:/mnt/v", "--", "sh", "-c",
                        "cat /proc/cmdline; cat /mnt/v/in; echo out > /mnt/v/out"))
        assert TEMPLATE_ARG in r.stdout.decode() and b"from the host" in r.stdout
        assert (tmp_path / "out").read_text() == "out\n"
    assert sorted(t["volumes"] for t in templates(tcli)) == [0, 1]
    ok(tcli.run("template", "rm", [t["id"] for t in templates(tcli) if t["volumes"]][0][:8]))


def test_a_stale_template_is_not_used_and_is_rebuilt(tcli, thome):
    """Stale: made for another kernel, agent build or QEMU. The key file records what it was
    made for; rewriting its kernel line makes it stale, as a rebuilt agent would."""
    tdir = warm(tcli, thome)
    key = tdir / "key"
    text = key.read_text()
    key.write_text(text.replace("\nkernel ", "\nkernel /old", 1))
    memory_mtime = (tdir / "memory").stat().st_mtime_ns
    r = ok(tcli.run("run", "--rm", "--", "echo", "works"))
    assert r.stdout == b"works\n"
    assert b"is not used (made for another kernel, agent, QEMU or shape)" in r.stderr, r.stderr
    assert key.read_text().split("bytes ")[0] == text.split("bytes ")[0]  # rebuilt
    assert (tdir / "memory").stat().st_mtime_ns != memory_mtime


def test_a_truncated_template_boots_cold_and_is_rebuilt(tcli, thome):
    tdir = warm(tcli, thome)
    mem = tdir / "memory"
    size = mem.stat().st_size
    os.truncate(mem, size // 2)
    r = ok(tcli.run("run", "--rm", "--", "echo", "works"))
    assert r.stdout == b"works\n"
    assert b"truncated" in r.stderr and r.stderr.count(b"\n") == 1, r.stderr  # one line
    assert abs(mem.stat().st_size - size) < size // 4  # whole again
    assert only_template(tcli, thome) == tdir


def test_a_template_qemu_cannot_load_boots_cold_and_is_rebuilt(tcli, thome):
    """Same size, damaged header: only QEMU can tell; the restore fails, the box boots anyway."""
    tdir = warm(tcli, thome)
    mem = tdir / "memory"
    with open(mem, "r+b") as f:
        f.write(b"\0" * 64)
    r = ok(tcli.run("run", "--rm", "--", "cat", "/proc/cmdline"))
    assert b"did not restore" in r.stderr, r.stderr
    assert TEMPLATE_ARG in r.stdout.decode()  # rebuilt, then restored
    with open(mem, "rb") as f:
        assert f.read(4) == b"QEVM"  # QEMU's migration stream magic
    only_template(tcli, thome)


def test_two_processes_starting_the_first_box_of_a_shape_build_one_template(tcli, thome):
    fresh(tcli)
    procs = [tcli.popen("run", "--rm", "--", "cat", "/proc/cmdline", stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE) for _ in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for stdout, stderr, rc in results:
        assert rc == 0 and TEMPLATE_ARG in stdout.decode(), (stdout, stderr)
        assert b"template" not in stderr, stderr  # no build was lost, none passed over
    only_template(tcli, thome)
    assert not list((thome / "templates" / ".build").iterdir())  # no blank disk left


SETUP_PROBE = ("cat /proc/cmdline; echo ra=$(cat /sys/block/vda/queue/read_ahead_kb); "
               "grep ' / ' /proc/mounts; echo lazyinit=$(ps | grep -c '[e]xt4lazyinit'); "
               "echo nets=$(ls /sys/class/net | tr '\\n' ,); "
               "mkdir -p /lo && echo via-loopback > /lo/i && httpd -p 127.0.0.1:8099 -h /lo && "
               "printf 'GET /i HTTP/1.0\\r\\n\\r\\n' | nc -w 5 127.0.0.1 8099 | tail -1")


@pytest.mark.parametrize("flags, template, nets", [
    ((), True, "eth0,lo,"),
    (("--network", "none"), True, "lo,"),
    (("--cold",), False, "eth0,lo,"),
])
def test_the_box_independent_setup_holds_in_restored_and_cold_boxes(tcli, thome, flags,
                                                                     template, nets):
    """What a template does before it is saved (loopback up, the box disk's read-ahead) holds
    in every box restored from it, with or without a network (a box without one gets no eth0
    from it), as in a cold-booted box; and the box disk is mounted with no ext4lazyinit thread
    behind the first exec, its journal kept."""
    if template:
        r = ok(tcli.run("run", "--rm", *flags, "--", "true"))  # builds the shape's template
    r = ok(tcli.run("run", "--rm", *flags, "--", "sh", "-c", SETUP_PROBE))
    text = r.stdout.decode()
    assert (TEMPLATE_ARG in text) == template, text
    assert "ra=1024" in text, text
    root = next(line for line in text.split("\n") if line.startswith("/dev/vda / ext4 "))
    opts = root.split()[3].split(",")
    assert "noinit_itable" in opts and "no_prefetch_block_bitmaps" in opts, root
    assert "data=" not in root and "noload" not in opts, root  # the journal is in use
    assert "lazyinit=0" in text, text
    assert f"nets={nets}" in text, text
    assert text.endswith("via-loopback\n"), text
    for t in templates(tcli):  # the other tests expect the default shape's template alone
        if not t["network"]:
            ok(tcli.run("template", "rm", t["id"][:8]))


def test_cold_flag_and_env_boot_without_a_template(tcli, thome, boxes):
    warm(tcli, thome)
    r = ok(tcli.run("run", "--rm", "--cold", "--name", "cold-run", "--", "cat", "/proc/cmdline"))
    assert TEMPLATE_ARG not in r.stdout.decode() and "boxlite.hostname=cold-run" in r.stdout.decode()
    r = ok(tcli.run("run", "--rm", "--", "cat", "/proc/cmdline"), )
    assert TEMPLATE_ARG in r.stdout.decode()
    r = ok(tcli.run("run", "--rm", "--", "cat", "/proc/cmdline", env={"BOXLITE_TEMPLATES": "0"}))
    assert TEMPLATE_ARG not in r.stdout.decode()
    box = boxes("cold-start")
    ok(tcli.run("start", "--cold", box))
    assert TEMPLATE_ARG not in guest(tcli, box, "cat /proc/cmdline")


def test_template_ls_prune_rm_and_info(tcli, thome):
    tdir = warm(tcli, thome)
    info = out(tcli.run("info"))
    assert "templates:   1," in info and "MiB on disk" in info
    (tdir / "key").unlink()  # unfinished
    assert [t["usable"] for t in templates(tcli)] == [False]
    assert out(tcli.run("template", "prune")) == "1 removed"
    assert templates(tcli) == []
    ok(tcli.run("template", "warm", "--cpus", "2", "--memory", "256"))
    t = templates(tcli)
    assert len(t) == 1 and t[0]["cpus"] == 2 and t[0]["memory_mib"] == 256 and t[0]["usable"]
    assert t[0]["size"] > 1 << 20
    r = ok(tcli.run("run", "--rm", "--cpus", "2", "--memory", "256", "--", "sh", "-c",
                    "cat /proc/cmdline; nproc"))
    assert TEMPLATE_ARG in r.stdout.decode() and r.stdout.decode().split()[-1] == "2"
    assert tcli.run("template", "rm", "nope").returncode != 0
    ok(tcli.run("template", "rm", t[0]["id"][:6]))
    assert templates(tcli) == []
    assert [b for b in json.loads(out(tcli.run("ls", "-a", "--format", "json")))] == []


# ---- one cold boot of each kind: the rest of the suite starts its boxes from templates ----

def test_cold_lifecycle_exec_network_and_snapshot(tcli, boxes):
    box = boxes("cold-kinds")
    ok(tcli.run("start", "--cold", box))
    assert TEMPLATE_ARG not in guest(tcli, box, "cat /proc/cmdline")
    # exec: stdin, exit status, env
    r = tcli.run("exec", "-i", box, "--", "sh", "-c", "cat; exit 7", input=b"piped")
    assert r.returncode == 7 and r.stdout == b"piped"
    # network
    assert "default via 10.0.2.2" in guest(tcli, box, "ip route")
    assert guest(tcli, box, "hostname") == box
    # lifecycle: stop and a cold start again keep the disk
    guest(tcli, box, "echo kept > /root/kept; sync")
    ok(tcli.run("stop", box))
    ok(tcli.run("start", "--cold", box))
    assert guest(tcli, box, "cat /root/kept") == "kept"
    # snapshot: a full one of a cold-booted box restores with its processes
    guest(tcli, box, "echo in-ram > /dev/shm/x")
    ok(tcli.run("snapshot", "create", "--memory", box, "full"))
    ok(tcli.run("stop", box))
    ok(tcli.run("snapshot", "restore", box, "full"))
    assert guest(tcli, box, "cat /dev/shm/x") == "in-ram"
