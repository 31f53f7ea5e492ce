"""test_lifecycle.py — boxes that remember: create/start/stop/remove from separate processes,
persistence across stops, crash repair, owner death, concurrent use and bad input."""
import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import threading
import time

import pytest
from procs import gone


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def info(cli, box):
    return json.loads(ok(cli.run("inspect", box)).stdout)[0]


def wait_state(cli, box, states, timeout=30):
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = info(cli, box)["state"]["status"]
        if st in states:
            return st
        time.sleep(0.2)
    raise AssertionError(f"{box} is {st}, not {states} after {timeout}s")


@pytest.fixture
def box(cli, request):
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    ok(cli.run("create", "--name", name))
    yield name
    cli.run("rm", "-f", name)


def test_files_and_programs_persist_across_stop_start_from_other_processes(cli, box):
    ok(cli.run("start", box))
    ok(cli.run("exec", box, "--", "sh", "-c",
               "echo 'persisted data' > /root/data.txt; mkdir -p /usr/local/bin; "
               "printf '#!/bin/sh\\necho tool v1 says $1\\n' > /usr/local/bin/mytool; "
               "chmod 755 /usr/local/bin/mytool; sync"))
    for cycle in range(3):
        ok(cli.run("stop", box))
        assert info(cli, box)["state"]["status"] == "stopped"
        ok(cli.run("start", box))
        r = ok(cli.run("exec", box, "--", "sh", "-c", f"cat /root/data.txt; mytool {cycle}; "
                       f"echo cycle{cycle} >> /root/log"))
        assert r.stdout.decode().splitlines() == ["persisted data", f"tool v1 says {cycle}"]
    r = ok(cli.run("exec", box, "--", "cat", "/root/log"))
    assert r.stdout == b"cycle0\ncycle1\ncycle2\n"


def test_info_and_list(cli, box):
    i = info(cli, box)
    assert len(i["id"]) == 12 and i["id"].isalnum()
    assert i["name"] == box and i["image"] == "default"
    assert i["state"]["status"] == "configured" and i["state"]["running"] is False
    assert i["created_at"].endswith("Z") and "T" in i["created_at"]
    assert i["cpus"] == 1 and i["memory_mib"] == 512
    ok(cli.run("start", box))
    i = info(cli, box)
    assert i["state"]["status"] == "running" and i["state"]["pid"] > 0
    listed = json.loads(ok(cli.run("ls", "--format", "json")).stdout)
    assert [b["id"] for b in listed if b["name"] == box] == [i["id"]]
    assert ok(cli.run("ls")).stdout.decode().count(box) == 1
    # by id prefix too
    assert info(cli, i["id"][:8])["name"] == box
    st = ok(cli.run("stats", box)).stdout.decode().splitlines()[1].split()
    assert float(st[2]) > 10  # MiB of guest memory in use
    # the guest console is kept: a line written to it in the box comes back from `logs`
    ok(cli.run("exec", box, "--", "sh", "-c", "echo console-mark-$((6*7)) > /dev/console"))
    deadline = time.monotonic() + 30
    while b"console-mark-42" not in ok(cli.run("logs", "--console", box)).stdout:
        assert time.monotonic() < deadline, ok(cli.run("logs", "--console", box)).stdout[-2000:]
        time.sleep(0.5)


def test_qemu_runs_under_its_seccomp_sandbox(cli, box):
    """The running QEMU got -sandbox with every deny option, and the kernel applied a seccomp
    filter (Seccomp: 2) to it and to every one of its threads."""
    ok(cli.run("start", box))
    pid = info(cli, box)["state"]["qemu_pid"]
    argv = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"-sandbox" in argv, argv
    opts = set(argv[argv.index(b"-sandbox") + 1].decode().split(","))
    assert opts >= {"on", "obsolete=deny", "elevateprivileges=deny", "spawn=deny",
                    "resourcecontrol=deny"}, opts
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        status = (task / "status").read_text()
        assert "\nSeccomp:\t2\n" in status, (task.name, status[-600:])
        assert "\nNoNewPrivs:\t1\n" in status, task.name


def test_kill_9_qemu_during_writes_then_start_and_fsck(cli, box, home, tmp_path):
    ok(cli.run("start", box))
    ok(cli.run("exec", box, "--", "sh", "-c", "echo before > /root/synced; sync"))
    writer = cli.popen("exec", box, "--", "sh", "-c",
                       "i=0; while true; do echo $i >> /root/spin; i=$((i+1)); done",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    os.kill(info(cli, box)["state"]["qemu_pid"], signal.SIGKILL)
    writer.wait(timeout=30)
    assert wait_state(cli, box, {"stopped", "failed"}) == "failed"
    assert "QEMU was killed" in info(cli, box)["state"]["reason"]
    ok(cli.run("start", box))
    r = ok(cli.run("exec", box, "--", "cat", "/root/synced"))
    assert r.stdout == b"before\n"
    ok(cli.run("stop", box))
    # the filesystem inside the box disk is clean after the journal replay of that boot
    disk = home / "boxes" / info(cli, box)["id"] / "disk.qcow2"
    raw = tmp_path / "disk.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(raw)], check=True)
    r = subprocess.run(["e2fsck", "-fn", str(raw)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stop_says_when_it_had_to_kill(cli, box):
    """A clean stop says nothing on stderr; a box that cannot power off (QEMU frozen) is
    killed after -t and the CLI says so — it never reports a kill as a clean stop."""
    ok(cli.run("start", box))
    r = ok(cli.run("stop", box))
    assert r.stderr == b"", r.stderr
    ok(cli.run("start", box))
    pid = info(cli, box)["state"]["qemu_pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        r = ok(cli.run("stop", "-t", "1", box, timeout=60))
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert b"was killed" in r.stderr, r.stderr
    assert wait_state(cli, box, {"stopped", "failed"}) in ("stopped", "failed")


def test_non_detached_box_stops_when_its_creator_is_killed(cli):
    p = cli.popen("run", "--name", "owned-box", "--", "sh", "-c", "echo up; sleep 600",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"up\n"
        assert info(cli, "owned-box")["state"]["status"] == "running"
        p.kill()
        p.wait()
        assert wait_state(cli, "owned-box", {"stopped"}, timeout=20) == "stopped"
    finally:
        p.kill()
        cli.run("rm", "-f", "owned-box")


def test_detached_box_outlives_its_creator(cli):
    p = cli.popen("run", "-d", "--name", "free-box", "--", "sh", "-c", "echo up; sleep 600",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"up\n"
        p.kill()
        p.wait()
        time.sleep(2)
        assert info(cli, "free-box")["state"]["status"] == "running"
        assert ok(cli.run("exec", "free-box", "--", "echo", "still here")).stdout == b"still here\n"
    finally:
        p.kill()
        cli.run("rm", "-f", "free-box")


def test_two_processes_exec_concurrently(cli, box):
    ok(cli.run("start", box))
    errors = []

    def worker(tag):
        for i in range(20):
            r = cli.run("exec", box, "--", "sh", "-c", f"echo {tag}-{i}; echo e{tag}{i} >&2; exit {i % 7}")
            if (r.returncode, r.stdout, r.stderr) != (i % 7, f"{tag}-{i}\n".encode(), f"e{tag}{i}\n".encode()):
                errors.append((tag, i, r.returncode, r.stdout, r.stderr))

    threads = [threading.Thread(target=worker, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_eight_boxes_from_four_processes_keep_the_store_consistent(cli):
    script = ("import subprocess,sys\n"
              "b=sys.argv[1]; tag=sys.argv[2]\n"
              "for k in (0,1):\n"
              "  n=f'par-{tag}-{k}'\n"
              "  subprocess.run([b,'create','--memory','256','--name',n],check=True,stdout=subprocess.DEVNULL)\n"
              "  subprocess.run([b,'start',n],check=True,stdout=subprocess.DEVNULL)\n")
    from boxlite_paths import BOXLITE
    procs = [subprocess.Popen(["/usr/bin/python3", "-c", script, str(BOXLITE), str(t)],
                              env=cli.env, stderr=subprocess.PIPE) for t in range(4)]
    try:
        for p in procs:
            assert p.wait(timeout=300) == 0, p.stderr.read()
        listed = json.loads(ok(cli.run("ls", "--format", "json")).stdout)
        mine = [b for b in listed if b["name"].startswith("par-")]
        assert sorted(b["name"] for b in mine) == sorted(f"par-{t}-{k}" for t in range(4) for k in (0, 1))
        assert len({b["id"] for b in mine}) == 8
        assert all(b["status"] == "running" for b in mine)
        for b in mine:
            assert ok(cli.run("exec", b["name"], "--", "hostname")).stdout.decode().strip() == b["name"]
    finally:
        for t in range(4):
            for k in (0, 1):
                cli.run("rm", "-f", f"par-{t}-{k}")


def test_errors_are_clear_and_change_nothing(cli, box):
    before = ok(cli.run("ls", "-a", "--format", "json")).stdout
    r = cli.run("create", "--name", box)
    assert r.returncode == 125 and b"already exists" in r.stderr
    r = cli.run("start", "no-such-box-xyz")
    assert r.returncode == 125 and b"no such box" in r.stderr
    for args, needle in [(["--cpus", "0"], b"cpus"), (["--memory", "1"], b"memory"),
                         (["--name", "a/b"], b"invalid box name"),
                         (["--rm", "-d"], b"remove-on-stop is incompatible")]:
        r = cli.run("create", *args)
        assert r.returncode in (2, 125) and needle in r.stderr, (args, r.stderr)
    assert ok(cli.run("ls", "-a", "--format", "json")).stdout == before
    ok(cli.run("start", box))
    r = cli.run("rm", box)
    assert r.returncode == 125 and b"is running" in r.stderr
    assert info(cli, box)["state"]["status"] == "running"
    ok(cli.run("rm", "-f", box))
    r = cli.run("inspect", box)
    assert r.returncode == 125


def test_disk_size_is_the_box_filesystem_size_and_enospc_stays_inside(cli, home):
    name = "sized-box"
    ok(cli.run("create", "--name", name, "--disk-size", "2"))
    try:
        ok(cli.run("start", name))
        r = ok(cli.run("exec", name, "--", "df", "-k", "/"))
        size_kib = int(r.stdout.decode().splitlines()[1].split()[1])
        assert 1.8 * 2**20 < size_kib < 2.1 * 2**20
        # fill it: fallocate takes the blocks without writing them (fast under TCG), then a
        # real write past the end fails with ENOSPC inside the box
        r = cli.run("exec", name, "--", "sh", "-c",
                    "i=0; while fallocate -l 64M /fill$i 2>/dev/null; do i=$((i+1)); done; "
                    "dd if=/dev/zero of=/more bs=1M count=64 2>&1; echo rc=$?", timeout=300)
        out = r.stdout.decode()
        assert "No space left on device" in out and "rc=1" in out, out
        disk = home / "boxes" / info(cli, name)["id"] / "disk.qcow2"
        assert disk.stat().st_size < 2.3 * 2**30
    finally:
        cli.run("rm", "-f", name)


def test_cpus_and_memory_reach_the_guest_and_restart_works(cli):
    name = "sized-cpu-mem"
    ok(cli.run("create", "--name", name, "--cpus", "2", "--memory", "384"))
    try:
        ok(cli.run("start", name))
        r = ok(cli.run("exec", name, "--", "sh", "-c",
                       "grep -c ^processor /proc/cpuinfo; grep MemTotal /proc/meminfo"))
        cpus, mem = r.stdout.decode().splitlines()
        assert cpus == "2"
        assert 300 * 1024 < int(mem.split()[1]) <= 384 * 1024
        pid = info(cli, name)["state"]["pid"]
        ok(cli.run("exec", name, "--", "sh", "-c", "echo kept > /root/kept"))
        ok(cli.run("restart", name))
        i = info(cli, name)
        assert i["state"]["status"] == "running" and i["state"]["pid"] != pid
        assert ok(cli.run("exec", name, "--", "cat", "/root/kept")).stdout == b"kept\n"
    finally:
        cli.run("rm", "-f", name)


def test_a_dead_monitor_is_repaired_and_the_box_starts_again(cli):
    name = "monitor-dies"
    ok(cli.run("create", "--name", name))
    try:
        ok(cli.run("start", name))
        ok(cli.run("exec", name, "--", "sh", "-c", "echo safe > /root/safe; sync"))
        i = info(cli, name)
        os.kill(i["state"]["pid"], signal.SIGKILL)  # the shim; QEMU dies with it
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if gone(i["state"]["qemu_pid"]):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("QEMU outlived its monitor")
        st = info(cli, name)["state"]
        assert st["status"] == "failed" and "monitor" in st["reason"], st
        ok(cli.run("start", name))
        assert ok(cli.run("exec", name, "--", "cat", "/root/safe")).stdout == b"safe\n"
    finally:
        cli.run("rm", "-f", name)


def test_a_process_posing_as_the_dead_monitor_does_not_keep_the_box_running(cli, home):
    """Liveness is the monitor's run lock (the kernel drops it when the monitor dies), never
    /proc text: once the monitor is killed, a process under the recorded pid whose command line
    reads like it (boxlite-shim ... --id ID) does not make the box look running."""
    name = "monitor-posed"
    ok(cli.run("create", "--name", name))
    decoy = None
    try:
        ok(cli.run("start", name))
        i = info(cli, name)
        decoy = subprocess.Popen(["boxlite-shim", "-c", "import time; time.sleep(120)",
                                  "--home", str(home), "--id", i["id"]],
                                 executable="/usr/bin/python3")
        os.kill(i["state"]["pid"], signal.SIGKILL)  # the real monitor; QEMU dies with it
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if gone(i["state"]["qemu_pid"]):
                break
            time.sleep(0.2)
        db = sqlite3.connect(str(home / "boxlite.db"), timeout=30)
        with db:
            db.execute("UPDATE boxes SET shim_pid = ? WHERE id = ?", (decoy.pid, i["id"]))
        db.close()
        st = info(cli, name)["state"]
        assert st["status"] == "failed" and "monitor" in st["reason"], st
        ok(cli.run("start", name))
        assert info(cli, name)["state"]["status"] == "running"
    finally:
        if decoy:
            decoy.kill()
            decoy.wait()
        cli.run("rm", "-f", name)


def test_rm_all_in_a_home_of_its_own(cli, tmp_path):
    env = {"BOXLITE_HOME": str(tmp_path / "home")}
    for n in ("one", "two", "three"):
        ok(cli.run("create", "--name", n, env=env))
    ok(cli.run("start", "two", env=env))
    r = cli.run("rm", "--all", env=env)
    assert r.returncode == 125 and b"is running" in r.stderr  # two is running: no -f
    left = json.loads(ok(cli.run("ls", "-a", "--format", "json", env=env)).stdout)
    assert [b["name"] for b in left] == ["two"]
    ok(cli.run("rm", "-f", "--all", env=env))
    assert json.loads(ok(cli.run("ls", "-a", "--format", "json", env=env)).stdout) == []
