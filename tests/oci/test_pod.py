"""test_pod.py — pods in one VM, driven directly with bundles carrying containerd's CRI
annotations: a sandbox makes the VM, two containers of the pod run inside it, each in its own
root, sharing the VM's localhost; exec, kill and state act on one container only; the sandbox
is not deleted under running containers; a container naming a sandbox that is missing, not a
sandbox, not running, or under another --root is refused with the JSON log and nothing started.
Directory mounts are copied into the VM once per pod and shared by its containers (read-only
where asked); hostile destinations and oversized sources are refused before anything starts."""
import json
import os
import subprocess

import pytest

from oci_helpers import Runtime, config, qemus, wait_status

PORT = 7311


def pod_cfg(args, ctype, sandbox):
    return config(args, annotations={"io.kubernetes.cri.container-type": ctype,
                                     "io.kubernetes.cri.sandbox-id": sandbox})


def pod_bundle(runtime, name, cfg, marker):
    b = runtime.bundle(name, cfg)
    (b / "rootfs" / "marker").write_text(marker)
    return b


@pytest.fixture
def sandbox(runtime):
    b = pod_bundle(runtime, "sb", pod_cfg(["/bin/echo", "pause"], "sandbox", "pod1"), "sandbox")
    pid, _, _ = runtime.create("pod1", b)
    assert runtime.run("start", "pod1").returncode == 0
    assert runtime.state("pod1")["status"] == "running"  # no process: the VM is the pod
    return pid


def test_two_containers_one_vm_own_roots_shared_localhost(runtime, sandbox, box_env, cli):
    box = runtime.state("pod1")["annotations"]["io.boxlite.box"]
    assert len(qemus(box_env["BOXLITE_HOME"])) == 1
    server = pod_bundle(runtime, "srv", pod_cfg(
        ["/bin/httpd", "-f", "-p", f"127.0.0.1:{PORT}", "-h", "/"],
        "container", "pod1"), "server-root")
    client = pod_bundle(runtime, "cli", pod_cfg(
        ["/bin/sh", "-c", f"cat /marker; echo; for i in $(seq 100); do "
         f"wget -q -O - http://127.0.0.1:{PORT}/marker && exit 0; sleep 0.2; done; exit 1"],
        "container", "pod1"), "client-root")
    spid, sout, serr = runtime.create("srv", server)
    cpid, cout, cerr = runtime.create("cli", client)
    assert runtime.state("srv")["annotations"]["io.boxlite.box"] == box  # the pod's VM
    assert runtime.run("start", "srv").returncode == 0
    assert runtime.run("start", "cli").returncode == 0
    assert wait_status(cpid) == 0, (cerr.read_text()[-300:], serr.read_text())
    # its own root first, then the server's, served over the pod's localhost
    assert cout.read_text() == "client-root\nserver-root", cerr.read_text()
    assert runtime.state("srv")["status"] == "running"
    assert runtime.state("cli")["status"] == "stopped"
    assert runtime.run("kill", "srv", "TERM").returncode == 0
    assert wait_status(spid) == 143, serr.read_text()
    assert runtime.state("pod1")["status"] == "running"  # the sandbox outlives its containers
    assert len(qemus(box_env["BOXLITE_HOME"])) == 1  # one VM for the pod
    assert len(json.loads(cli.run("ls", "--format", "json").stdout)) == 1  # one box per pod
    def pod_roots():
        r = cli.run("exec", box, "--", "ls", "-a", "/")
        assert r.returncode == 0, r.stderr
        return sorted(n for n in r.stdout.decode().split() if n.startswith(".boxlite-pod."))
    assert pod_roots() == [".boxlite-pod.cli", ".boxlite-pod.srv"]  # beside the sandbox's root
    for c in ("srv", "cli"):
        assert runtime.run("delete", c).returncode == 0
    assert pod_roots() == []  # a deleted container's root leaves the VM
    assert runtime.run("kill", "pod1", "KILL").returncode == 0
    assert wait_status(sandbox) == -9  # SIGKILL ends the keeper itself
    assert runtime.run("delete", "pod1").returncode == 0
    assert box not in cli.run("ls", "-a").stdout.decode()
    assert qemus(box_env["BOXLITE_HOME"]) == []


def test_exec_kill_state_act_on_one_container(runtime, sandbox):
    a = pod_bundle(runtime, "a", pod_cfg(["/bin/sleep", "600"], "container", "pod1"), "root-a")
    b = pod_bundle(runtime, "b", pod_cfg(["/bin/sleep", "600"], "container", "pod1"), "root-b")
    apid, _, _ = runtime.create("a", a)
    bpid, _, _ = runtime.create("b", b)
    assert runtime.run("start", "a").returncode == 0 and runtime.run("start", "b").returncode == 0
    proc = runtime.tmp / "p.json"
    proc.write_text(json.dumps({"args": ["/bin/sh", "-c", "cat /marker; echo \" $(pwd) $(id -u)\"; "
                                         "exit 4"],
                                "cwd": "/tmp", "env": ["PATH=/bin"],
                                "user": {"uid": 1000, "gid": 1000}}))
    r = runtime.run("exec", "--process", proc, "b")
    assert (r.returncode, r.stdout) == (4, "root-b /tmp 1000\n"), r.stderr
    assert runtime.run("delete", "pod1").returncode != 0  # its containers run
    assert "containers still run" in runtime.log_lines()[-1]["msg"]
    assert runtime.run("kill", "a", "TERM").returncode == 0
    assert wait_status(apid) == 143
    assert runtime.state("a")["status"] == "stopped"
    assert runtime.state("b")["status"] == "running"
    assert runtime.state("pod1")["status"] == "running"
    r = runtime.run("exec", "--process", proc, "b")  # b's process and the VM live on
    assert r.returncode == 4, r.stderr
    assert runtime.run("delete", "--force", "pod1").returncode == 0  # kills b first
    assert wait_status(bpid) == -9
    assert wait_status(sandbox) == -9  # SIGKILL ends the keeper itself
    assert runtime.state("b")["status"] == "stopped"


@pytest.mark.parametrize("sandbox_id", ["nosuchpod", "../pod1", "srv0", "idle"])
def test_hostile_sandbox_id_refused(runtime, tmp_path, box_env, sandbox_id):
    if sandbox_id == "srv0":  # a container of the root that is not a sandbox
        b0 = pod_bundle(runtime, "s0", config(["/bin/sleep", "600"]), "plain")
        runtime.create("srv0", b0)
    if sandbox_id == "idle":  # a sandbox created, not started: CRI starts it first
        b0 = pod_bundle(runtime, "s0", pod_cfg(["/pause"], "sandbox", "idle"), "idle")
        runtime.create("idle", b0)
    b = pod_bundle(runtime, "bad", pod_cfg(["/bin/echo", "never"], "container", sandbox_id), "x")
    before = qemus(box_env["BOXLITE_HOME"])
    r = runtime.run("create", "--bundle", b, "c-bad")
    assert r.returncode != 0
    err = runtime.log_lines()[-1]
    assert err["level"] == "error" and "sandbox" in err["msg"], err
    assert not (runtime.root / "c-bad").exists()
    assert qemus(box_env["BOXLITE_HOME"]) == before


def test_sandbox_of_another_root_refused(runtime, sandbox, tmp_path, box_env):
    other = Runtime(tmp_path / "other", box_env)
    (tmp_path / "other").mkdir()
    b = pod_bundle(other, "bad", pod_cfg(["/bin/echo", "never"], "container", "pod1"), "x")
    r = other.run("create", "--bundle", b, "c-other")
    assert r.returncode != 0
    assert "does not exist" in other.log_lines()[-1]["msg"]
    assert not (other.root / "c-other").exists()
    assert len(qemus(box_env["BOXLITE_HOME"])) == 1  # only the pod's own VM


def bind(source, dest, *opts):
    return {"destination": dest, "type": "bind", "source": str(source),
            "options": ["rbind", *opts]}


def vol_cfg(args, sandbox, *mounts):
    c = pod_cfg(args, "container", sandbox)
    c["mounts"] = c["mounts"] + list(mounts)
    return c


def test_directory_mounts_shared_in_pod_read_only_kept(runtime, sandbox, box_env, cli, tmp_path):
    vol = tmp_path / "emptydir"
    vol.mkdir()
    (vol / "seed").write_text("from-host")
    (tmp_path / "empty").mkdir()  # a fresh emptyDir
    writer = pod_bundle(runtime, "w", vol_cfg(
        ["/bin/sh", "-c", "cat /data/seed; echo; echo from-w > /data/out; "
         "echo s > /scratch/s && cat /scratch/s"], "pod1",
        bind(vol, "/data", "rw"), bind(tmp_path / "empty", "/scratch")), "w")
    reader = pod_bundle(runtime, "r", vol_cfg(["/bin/sleep", "600"], "pod1",
                                              bind(vol, "/var/shared", "rw"),
                                              bind(vol, "/ro", "ro"),
                                              bind(vol, "/abs/v", "ro")), "r")
    os.symlink("/etc", reader / "rootfs" / "abs")  # resolved in the container's root
    wpid, wout, werr = runtime.create("w", writer)
    assert runtime.run("start", "w").returncode == 0
    assert wait_status(wpid) == 0, werr.read_text()
    assert wout.read_text() == "from-host\ns\n"
    rpid, _, rerr = runtime.create("r", reader)
    assert runtime.run("start", "r").returncode == 0
    proc = runtime.tmp / "p.json"
    proc.write_text(json.dumps({
        "args": ["/bin/sh", "-c", "cat /var/shared/out /ro/out; echo x > /ro/new && exit 9; "
                 "echo y > /var/shared/new && cat /ro/new /etc/v/new"],
        "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}))
    r = runtime.run("exec", "--process", proc, "r")  # an exec sees the container's volumes
    assert (r.returncode, r.stdout) == (0, "from-w\nfrom-w\ny\ny\n"), r.stderr
    assert "Read-only file system" in r.stderr
    assert sorted(p.name for p in vol.iterdir()) == ["seed"]  # writes stay in the VM
    box = runtime.state("pod1")["annotations"]["io.boxlite.box"]
    ls = cli.run("exec", box, "--", "ls", "-a", "/").stdout.decode().split()
    assert len([n for n in ls if n.startswith(".boxlite-pod-vol.")]) == 2  # one copy a source
    assert cli.run("exec", box, "--", "ls", "/etc/v").returncode != 0  # not the VM's /etc
    assert runtime.run("delete", "--force", "pod1").returncode == 0
    assert wait_status(rpid) == -9, rerr.read_text()
    assert not (runtime.root / "pod1").exists()
    assert box not in cli.run("ls", "-a").stdout.decode()  # the volumes went with the VM


@pytest.mark.parametrize("attack", ["dotdot", "symlink", "huge"])
def test_hostile_mount_refused(runtime, sandbox, box_env, tmp_path, attack):
    src = tmp_path / "src"
    src.mkdir()
    dest = {"dotdot": "/../../etc", "symlink": "/esc/x", "huge": "/data"}[attack]
    if attack == "huge":  # one entry over the bound
        for i in range(4096):
            (src / str(i)).touch()
    b = pod_bundle(runtime, "bad", vol_cfg(["/bin/echo", "never"], "pod1", bind(src, dest)), "x")
    if attack == "symlink":
        os.symlink("../../../../etc", b / "rootfs" / "esc")
    before = qemus(box_env["BOXLITE_HOME"])
    r = runtime.run("create", "--bundle", b, "c-bad", timeout=120, capture_output=False,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # a keeper holds no pipe
    assert r.returncode != 0
    err = runtime.log_lines()[-1]
    assert err["level"] == "error", err
    assert {"dotdot": "destination", "symlink": "leads out", "huge": "4096 entries"}[attack] in err["msg"]
    assert not (runtime.root / "c-bad").exists()
    assert qemus(box_env["BOXLITE_HOME"]) == before
    assert not list((runtime.root / "pod1").glob("boxlite-pod-vol.*"))
