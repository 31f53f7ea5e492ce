"""test_jail.py — the jail around each box's QEMU, seen from the host (/proc of the real
process): its uid and id map, its namespaces, capabilities, no_new_privs and seccomp, its
cgroup, its rlimits and the only files it can see. Runs as root and as an ordinary user
(docs/security.md, "The jail"); BOXLITE_JAIL=0 must make every check here fail."""
import json
import os
import pathlib

import pytest

from boxlite_paths import BUILD

UID_BASE, UID_SLOTS = 0x60000000, 0x100000
MEM_MIB = 384
ROOT = os.geteuid() == 0


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def status(pid):
    out = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


@pytest.fixture(scope="module")
def jailed(cli, home, tmp_path_factory):
    """One running box with a rw and a ro volume: (qemu pid, shim pid, box id, volumes)."""
    vols = tmp_path_factory.mktemp("jail-vols")
    rw, ro = vols / "rw", vols / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "seen").write_text("ro\n")
    ok(cli.run("create", "--name", "jailed", "--memory", str(MEM_MIB), "-v", f"{rw}:/mnt/rw",
               "-v", f"{ro}:/mnt/ro:ro"))
    try:
        ok(cli.run("start", "jailed"))
        info = json.loads(ok(cli.run("inspect", "jailed")).stdout)[0]
        yield info["state"]["qemu_pid"], info["state"]["pid"], info["id"], rw, ro
    finally:
        cli.run("rm", "-f", "jailed")


def test_qemu_runs_as_an_unprivileged_uid_mapped_alone(jailed):
    pid = jailed[0]
    uids = [int(x) for x in status(pid)["Uid"].split()]
    gids = [int(x) for x in status(pid)["Gid"].split()]
    if ROOT:  # a dedicated uid per box, never root
        uid = uids[0]
        assert UID_BASE <= uid < UID_BASE + UID_SLOTS, uids
    else:  # the caller's own uid
        uid = os.getuid()
    assert uids == [uid] * 4 and gids == [gids[0]] * 4, (uids, gids)
    # inside its own user namespace: an ordinary user's maps its one uid; root's maps every
    # id but root (volumes keep other users' owners), so host root means nothing inside
    uid_map = pathlib.Path(f"/proc/{pid}/uid_map").read_text().split()
    assert uid_map == (["1", "1", "4294967294"] if ROOT else [str(uid), str(uid), "1"])


def test_qemu_has_its_own_namespaces(jailed):
    pid, shim = jailed[0], jailed[1]
    for ns in ("user", "mnt", "pid", "ipc", "uts", "net"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/{shim}/ns/{ns}"), ns
    # the guest network comes in as an fd (the shim's slirp): QEMU's own network namespace is
    # empty — no interface but a loopback that is down
    links = pathlib.Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    assert [ln.split(":")[0].strip() for ln in links] == ["lo"], links


# root's QEMU keeps DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER (its namespace only: no CHOWN)
KEPT = (1 << 1) | (1 << 2) | (1 << 3) if ROOT else 0


def test_no_capabilities_no_new_privs_and_our_seccomp_filter(jailed):
    st = status(jailed[0])
    assert int(st["CapEff"], 16) == KEPT and int(st["CapPrm"], 16) == KEPT, st["CapEff"]
    assert int(st["CapBnd"], 16) == KEPT or not ROOT, st["CapBnd"]
    assert st["NoNewPrivs"] == "1"
    assert st["Seccomp"] == "2"
    # ours, then QEMU's own -sandbox on top
    assert int(st["Seccomp_filters"]) >= 2, st["Seccomp_filters"]


def test_rlimits_sized_from_the_guest_memory(jailed):
    lim = {}
    for line in pathlib.Path(f"/proc/{jailed[0]}/limits").read_text().splitlines()[1:]:
        name, soft, hard = line[:26].strip(), line[26:47].strip(), line[47:68].strip()
        lim[name] = (soft, hard)
    assert lim["Max address space"] == (str((MEM_MIB + 4096) << 20),) * 2
    assert lim["Max open files"] == ("4096", "4096")
    assert lim["Max processes"] == ("512", "512")
    assert lim["Max core file size"] == ("0", "0")


def test_cgroup_limits_memory_cpu_and_pids(jailed):
    pid, _, box = jailed[0], jailed[1], jailed[2]
    v1 = pathlib.Path("/sys/fs/cgroup/memory/cgroup.procs").exists()
    if not ROOT and not pathlib.Path("/sys/fs/cgroup/cgroup.controllers").exists():
        pytest.skip("no cgroup v2 delegated to this user: the jail runs without one (notice)")
    groups = dict(line.split(":", 2)[1:] for line in
                  pathlib.Path(f"/proc/{pid}/cgroup").read_text().splitlines())
    if v1:
        for ctl in ("memory", "cpu", "pids"):
            assert groups[ctl] == f"/boxlite/{box}", groups
        cg = pathlib.Path("/sys/fs/cgroup")
        mem = (cg / "memory" / "boxlite" / box / "memory.limit_in_bytes").read_text()
        assert int(mem) == (MEM_MIB + 1024) << 20
        assert (cg / "cpu" / "boxlite" / box / "cpu.cfs_quota_us").read_text().strip() == "100000"
        assert (cg / "pids" / "boxlite" / box / "pids.max").read_text().strip() == "512"
        # the monitor enters the box's cgroups only to clone QEMU inside them, then returns
        # (src/jail/cgroup.c): the box's cgroups hold QEMU alone, the monitor is where it was
        shim = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        for ctl in ("memory", "cpu", "pids"):
            assert (cg / ctl / "boxlite" / box / "cgroup.procs").read_text().split() == [str(pid)]
            for task in pathlib.Path(f"/proc/{shim}/task").iterdir():
                line = [x for x in (task / "cgroup").read_text().splitlines()
                        if ctl in x.split(":")[1].split(",")]
                assert line and not line[0].endswith(f"/boxlite/{box}"), (ctl, task, line)
    else:
        assert groups[""].endswith(f"/boxlite-{box}"), groups


def test_qemu_sees_only_what_it_needs(jailed, home):
    pid, _, box, rw, ro = jailed
    root = pathlib.Path(f"/proc/{pid}/root")
    boxdir = pathlib.Path(home).resolve() / "boxes" / box
    needed = [BUILD.resolve() / "guest" / "vmlinux", BUILD.resolve() / "guest" / "initramfs.cpio.gz",
              boxdir / "console.sock", boxdir / "layers", boxdir / "ram", rw, ro]
    tops = {p.parts[1] for p in needed} | {"usr", "lib", "lib64", "bin", "dev", "proc", "etc"}
    assert set(os.listdir(root)) <= tops, sorted(os.listdir(root))
    for p in needed:
        assert (root / str(p)[1:]).exists(), p
    # nothing else of the box, the home, the host
    assert sorted(os.listdir(root / str(boxdir)[1:])) == ["console.sock", "layers", "ram"]
    assert sorted(os.listdir(root / str(boxdir.parent)[1:])) == [box]
    assert set(os.listdir(root / "dev")) <= {"null", "zero", "urandom", "random", "kvm"}
    assert set(os.listdir(root / "etc")) <= {"resolv.conf"}
    assert not (root / "etc" / "passwd").exists() and not (root / "root").exists()
    assert not (root / "home").exists() and not (root / "tmp" / ".X11-unix").exists()
    # its /proc is its own pid namespace's: QEMU is pid 1 and alone
    assert [d for d in os.listdir(root / "proc") if d.isdigit()] == ["1"]
    # the ro volume and the image base are mounted read-only
    mounts = pathlib.Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    ro_line = [m for m in mounts if m.split()[4] == str(ro)]
    assert ro_line and ro_line[0].split()[5].startswith("ro"), ro_line


def test_guest_files_on_a_volume_are_owned_by_the_caller(cli, jailed):
    rw = jailed[3]
    ok(cli.run("exec", "jailed", "--", "sh", "-c", "echo hi > /mnt/rw/made && mkdir /mnt/rw/d"))
    for name in ("made", "d"):
        st = (rw / name).stat()
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), (name, st.st_uid)
    assert (rw / "made").read_text() == "hi\n"


def test_a_volume_holding_the_boxes_own_files_does_not_cover_them(cli, home):
    """-v $HOME:/home with BOXLITE_HOME inside it: the jail mounts the volume (read-only here)
    before the box's layers inside it, so the box still boots on a writable disk."""
    outer = pathlib.Path(home).resolve().parent
    ok(cli.run("create", "--name", "nested-vol", "-v", f"{outer}:/outer:ro"))
    try:
        ok(cli.run("start", "nested-vol", timeout=300))
        r = ok(cli.run("exec", "nested-vol", "--", "sh", "-c",
                       f"echo w > /root/w && cat /root/w && ls /outer/{pathlib.Path(home).name}"))
        assert r.stdout.splitlines()[0] == b"w", r.stdout
        assert b"boxes" in r.stdout, r.stdout
    finally:
        cli.run("rm", "-f", "nested-vol")


def test_jail_off_runs_qemu_in_the_shims_namespaces(cli):
    ok(cli.run("create", "--name", "unjailed"))
    try:
        ok(cli.run("start", "unjailed", env={"BOXLITE_JAIL": "0"}))
        st = json.loads(ok(cli.run("inspect", "unjailed")).stdout)[0]["state"]
        for ns in ("user", "mnt", "pid"):
            assert (os.readlink(f"/proc/{st['qemu_pid']}/ns/{ns}") ==
                    os.readlink(f"/proc/{st['pid']}/ns/{ns}"))
        ok(cli.run("exec", "unjailed", "--", "true"))
    finally:
        cli.run("rm", "-f", "unjailed")


def test_a_chain_deeper_than_64_layers_starts(cli, home):
    """130 offline snapshots (each one more layer under the box's disk): the box still boots and
    takes writes. The jail binds the first 64 files of the chain one by one (the top writable,
    the 63 below it read-only), and below that the directories holding further layers (the
    image base's among them), read-only; the box's own layers directory is bound writable, so
    every older layer of its own stays bound read-only one by one at any depth (a QEMU taken
    over cannot rewrite what the box's snapshots rest on)."""
    ok(cli.run("create", "--name", "deep-chain"))
    try:
        for i in range(130):
            ok(cli.run("snapshot", "create", "deep-chain", f"s{i}"))
        ok(cli.run("start", "deep-chain", timeout=300))
        r = ok(cli.run("exec", "deep-chain", "--", "sh", "-c", "echo deep > /root/d && cat /root/d"))
        assert r.stdout == b"deep\n", r.stdout
        info = json.loads(ok(cli.run("inspect", "deep-chain")).stdout)[0]
        layers = pathlib.Path(home).resolve() / "boxes" / info["id"] / "layers"
        mounts = [m.split() for m in
                  pathlib.Path(f"/proc/{info['state']['qemu_pid']}/mountinfo").read_text()
                  .splitlines()]
        ro_layers = [m for m in mounts
                     if m[4].startswith(str(layers) + "/") and m[5].startswith("ro")]
        assert len(ro_layers) == 130, len(ro_layers)
        base = [m for m in mounts if "/images/rootfs" in m[4]]
        assert base and all(m[5].startswith("ro") for m in base), base
        ok(cli.run("stop", "deep-chain", timeout=120))
    finally:
        cli.run("rm", "-f", "deep-chain", timeout=120)
