"""test_rlimits_readonly.py — config.json's process.rlimits are set in the guest, not on the
host (limits above the host's own, which crun cannot set here, reach the container's process),
root.readonly makes the container's root read-only in the guest for its process and for exec'd
ones (a bind-mounted volume stays writable), and hostile rlimits/readonly fields are refused
with the runtime's JSON error and nothing started."""
import json
import resource

import pytest

from oci_helpers import config, wait_status

SCRIPT = ('echo "nofile $(ulimit -Sn) $(ulimit -Hn) nproc $(ulimit -Hu)"; '
          'if touch /root-file 2>/dev/null; then echo root rw; else echo root ro; fi; '
          'if touch /vol/vol-file; then echo vol rw; fi; '
          'i=0; while [ ! -e /vol/done ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done; exit 5')


def test_rlimits_and_readonly_root_in_guest(runtime):
    host_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nproc = 4194304 if host_nproc == resource.RLIM_INFINITY else host_nproc + 1000
    vol = runtime.tmp / "vol"
    vol.mkdir()
    cfg = config(["/bin/sh", "-c", SCRIPT], root={"path": "rootfs", "readonly": True},
                 mounts=[{"destination": "/vol", "type": "bind", "source": str(vol),
                          "options": ["rbind", "rw"]}])
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888},
                                 {"type": "RLIMIT_NPROC", "soft": nproc, "hard": nproc}]
    pid, out, err = runtime.create("cr", runtime.bundle("br", cfg))
    assert runtime.run("start", "cr").returncode == 0
    proc = runtime.tmp / "p.json"
    proc.write_text(json.dumps({"args": ["/bin/sh", "-c", "touch /exec-file || echo exec ro"],
                                "cwd": "/", "env": ["PATH=/bin"]}))
    r = runtime.run("exec", "--process", proc, "cr")
    assert "exec ro" in r.stdout, (r.stdout, r.stderr)  # exec'd processes see it read-only too
    (vol / "done").touch()
    assert wait_status(pid, timeout=200) == 5, (out.read_text(), err.read_text())
    assert out.read_text().splitlines()[:3] == [f"nofile 777 888 nproc {nproc}", "root ro",
                                                "vol rw"], (out.read_text(), err.read_text())
    assert (vol / "vol-file").exists()
    # the host's own limits are untouched
    assert resource.getrlimit(resource.RLIMIT_NPROC)[1] == host_nproc
    assert runtime.run("delete", "cr").returncode == 0


def test_writable_root_by_default(runtime):
    cfg = config(["/bin/sh", "-c", "touch /root-file && echo root rw"])
    pid, out, err = runtime.create("cw", runtime.bundle("bw", cfg))
    assert runtime.run("start", "cw").returncode == 0
    assert wait_status(pid) == 0
    assert out.read_text() == "root rw\n", err.read_text()
    runtime.run("delete", "cw")


def with_rlimits(rl, **kw):
    c = config(["/bin/true"], **kw)
    c["process"]["rlimits"] = rl
    return c


HOSTILE = {
    "unknown type": with_rlimits([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
    "type not a string": with_rlimits([{"type": 7, "soft": 1, "hard": 1}]),
    "soft above hard": with_rlimits([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]),
    "negative": with_rlimits([{"type": "RLIMIT_NOFILE", "soft": -1, "hard": -1}]),
    "string value": with_rlimits([{"type": "RLIMIT_NOFILE", "soft": "1", "hard": 2}]),
    "twice": with_rlimits([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2),
    "too many": with_rlimits([{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 17),
    "not an array": with_rlimits({"RLIMIT_NOFILE": 1}),
    "past 2^64": '{"ociVersion":"1","root":{"path":"rootfs"},"process":{"cwd":"/","args":["a"],'
                 '"rlimits":[{"type":"RLIMIT_CORE","soft":1,"hard":99999999999999999999999}]}}',
    "readonly a string": config(["/bin/true"], root={"path": "rootfs", "readonly": "yes"}),
    "resources not an object": config(["/bin/true"], linux={"resources": [1]}),
    "memory limit a string": config(["/bin/true"], linux={"resources": {"memory": {"limit": "1G"}}}),
    "absurd pids": config(["/bin/true"], linux={"resources": {"pids": {"limit": 1 << 50}}}),
    "annotations not an object": config(["/bin/true"], annotations=["io.container.manager"]),
    "annotation not a string": config(["/bin/true"], annotations={"io.container.manager": 1}),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_rlimits_readonly_refused(runtime, cli, name):
    cfg = HOSTILE[name]
    b = runtime.bundle("hb", config(["/bin/true"]))
    (b / "config.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    before = cli.run("ls", "-a", "-q").stdout
    r = runtime.run("create", "--bundle", b, "--pid-file", runtime.tmp / "h.pid", "hc")
    assert r.returncode != 0
    lines = runtime.log_lines()
    assert lines and lines[-1]["level"] == "error" and "config.json" in lines[-1]["msg"], lines
    assert not (runtime.tmp / "h.pid").exists() and not (runtime.root / "hc").exists()
    assert cli.run("ls", "-a", "-q").stdout == before


@pytest.mark.parametrize("annotations,engine", [({"io.container.manager": "libpod"}, "podman"),
                                                ({"io.kubernetes.cri.container-type": "sandbox"},
                                                 "kubernetes"),
                                                ({"other": "x"}, "oci")])
def test_box_marked_as_engine_managed(runtime, cli, annotations, engine):
    """boxlite ls / inspect say which engine manages a box boxlite-runtime made."""
    cfg = config(["/bin/sleep", "600"], annotations=annotations)
    runtime.create("cm", runtime.bundle("bm", cfg))
    box = runtime.state("cm")["annotations"]["io.boxlite.box"]
    assert json.loads(cli.run("inspect", box).stdout)[0]["managed_by"] == engine
    mine = [b for b in json.loads(cli.run("ls", "-a", "--format", "json").stdout)
            if b["id"] == box]
    assert mine[0]["managed_by"] == engine
    assert f"localhost/oci-{engine}"[:24] in cli.run("ls", "-a").stdout.decode()
    assert runtime.run("delete", "--force", "cm").returncode == 0
