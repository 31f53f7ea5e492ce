"""test_pause_update.py — boxlite-runtime's pause/resume (the VM stopped and continued through
QEMU's monitor: the guest's output halts and goes on, state says "paused"), events --stats in
runc's shape (QEMU's CPU time and resident memory, the VM's memory as the limit), update
(limits a VM already holds accepted; what it cannot apply named in a warning), and hostile
update documents refused in the JSON log before any container is touched."""
import json
import time

import pytest

from oci_helpers import config, wait_status

TICKER = ["/bin/sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); echo $i; sleep 0.2; done"]


def wait_growth(path, than, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.stat().st_size > than:
            return path.stat().st_size
        time.sleep(0.2)
    raise AssertionError(f"{path} stayed at {than} bytes for {timeout}s")


def stats(runtime, cid):
    r = runtime.run("events", "--stats", cid)
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    return ev["data"]


def test_pause_resume_events_update(runtime):
    b = runtime.bundle("bp", config(TICKER))
    pid, out, err = runtime.create("cp", b)
    assert runtime.run("start", "cp").returncode == 0
    wait_growth(out, 0)
    data = stats(runtime, "cp")
    assert data["cpu"]["usage"]["total"] > 0
    assert 0 < data["memory"]["usage"]["usage"]
    assert data["memory"]["usage"]["limit"] == 512 << 20  # the VM's default size

    r = runtime.run("pause", "cp")
    assert r.returncode == 0, r.stderr
    assert runtime.state("cp")["status"] == "paused"
    time.sleep(1)  # what was on its way out before the stop
    frozen = out.stat().st_size
    time.sleep(3)
    assert out.stat().st_size == frozen  # no guest process runs
    assert runtime.run("pause", "cp").returncode != 0  # already paused
    r = runtime.run("resume", "cp")
    assert r.returncode == 0, r.stderr
    assert runtime.state("cp")["status"] == "running"
    wait_growth(out, frozen, timeout=60)
    assert runtime.run("resume", "cp").returncode != 0  # not paused

    small = runtime.tmp / "small.json"
    small.write_text(json.dumps({"memory": {"limit": 64 << 20}, "pids": {"limit": 50}}))
    r = runtime.run("update", "--resources", small, "cp")
    assert r.returncode == 0, r.stderr
    assert "not applied: memory.limit" in r.stderr and "not applied: pids.limit" in r.stderr
    warn = [l["msg"] for l in runtime.log_lines() if l["level"] == "warning"]
    assert any("memory.limit 67108864" in m for m in warn), warn
    big = runtime.tmp / "big.json"
    big.write_text(json.dumps({"memory": {"limit": 1 << 30}, "cpu": {"quota": 100000}}))
    r = runtime.run("update", "--resources", big, "cp")
    assert (r.returncode, r.stderr) == (0, "")  # the VM already holds these limits
    r = runtime.run("update", "--memory", str(1 << 30), "cp")
    assert (r.returncode, r.stderr) == (0, "")

    assert runtime.run("pause", "cp").returncode == 0
    assert runtime.run("kill", "cp", "KILL").returncode == 0  # a paused container can be killed
    assert wait_status(pid) != 0
    assert runtime.state("cp")["status"] == "stopped"
    assert runtime.run("events", "--stats", "cp").returncode != 0
    assert runtime.run("delete", "cp").returncode == 0


HOSTILE_UPDATES = {
    "not json": "{",
    "not an object": "[1]",
    "memory a string": json.dumps({"memory": "lots"}),
    "limit a string": json.dumps({"memory": {"limit": "1G"}}),
    "absurd memory": json.dumps({"memory": {"limit": 1 << 62}}),
    "absurd pids": json.dumps({"pids": {"limit": 1 << 40}}),
    "cpu period zero": json.dumps({"cpu": {"quota": 1000, "period": 0}}),
    "cpu not an object": json.dumps({"cpu": 4}),
    "huge integer": '{"memory":{"limit":99999999999999999999999}}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_UPDATES))
def test_hostile_update_refused(runtime, name):
    doc = runtime.tmp / "res.json"
    doc.write_text(HOSTILE_UPDATES[name])
    r = runtime.run("update", "--resources", doc, "no-such-container")
    assert r.returncode != 0
    lines = runtime.log_lines()
    assert lines and lines[-1]["level"] == "error", lines
    assert lines[-1]["msg"].startswith("update: "), lines[-1]  # the document, not the id
    assert "does not exist" not in lines[-1]["msg"]


@pytest.mark.parametrize("flags", [["--memory", "1G"], ["--pids-limit", "x"],
                                   ["--memory", str(1 << 62)], ["--cpu-quota", "5", "--cpu-period", "-1"]])
def test_hostile_update_flags_refused(runtime, flags):
    r = runtime.run("update", *flags, "no-such-container")
    assert r.returncode != 0
    assert runtime.log_lines()[-1]["msg"].startswith("update: ")


def test_events_interval_refused(runtime):
    r = runtime.run("events", "--interval", "-5s", "no-such")
    assert r.returncode != 0 and "--interval" in runtime.log_lines()[-1]["msg"]
