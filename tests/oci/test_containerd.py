"""test_containerd.py — containerd 1.6 (Debian), started here with its own root, state and
sockets, running boxlite-runtime through its runc v2 shim (`ctr run --runc-binary`): an
image pulled with ctr from a registry at 127.0.0.1, output, exit status, `ctr task exec`,
`ctr task kill`. The runtime's home reaches it through containerd's environment, which the
shim passes on."""
import json
import os
import shutil
import subprocess
import time

import pytest

from oci_helpers import RUNTIME

pytestmark = pytest.mark.skipif(not shutil.which("containerd") or not shutil.which("ctr"),
                                reason="containerd not installed (scripts/install-deps.sh)")

CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
"""


@pytest.fixture(scope="module")
def ctr(tmp_path_factory, image, home):
    d = tmp_path_factory.mktemp("containerd")
    (d / "config.toml").write_text(CONFIG.format(d=d))
    env = dict(os.environ, BOXLITE_HOME=str(home))
    log = open(d / "containerd.log", "w")
    proc = subprocess.Popen(["containerd", "--config", str(d / "config.toml")], env=env,
                            stdout=log, stderr=log, start_new_session=True)
    for _ in range(100):
        if (d / "containerd.sock").exists():
            break
        time.sleep(0.1)

    def run(*args, timeout=300, input=None):
        return subprocess.run(["ctr", "--address", str(d / "containerd.sock"), *args],
                              capture_output=True, text=True, timeout=timeout, input=input)
    try:
        r = run("images", "pull", "--plain-http", "--snapshotter", "native", image)
        assert r.returncode == 0, r.stderr
        yield run
    finally:
        for t in run("task", "ls", "-q").stdout.split():
            run("task", "kill", "-s", "SIGKILL", t)
            run("task", "delete", "-f", t)
        for c in run("containers", "ls", "-q").stdout.split():
            run("containers", "rm", c)
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_run_output_and_exit_status(ctr, image):
    r = ctr("run", "--snapshotter", "native", "--runtime", "io.containerd.runc.v2",
            "--runc-binary", str(RUNTIME), "--rm", image, "t1", "sh", "-c",
            "echo hello from ctr; exit 6")
    assert (r.returncode, r.stdout) == (6, "hello from ctr\n"), r.stderr


def test_exec_and_kill(ctr, image, cli):
    r = ctr("run", "-d", "--snapshotter", "native", "--runtime", "io.containerd.runc.v2",
            "--runc-binary", str(RUNTIME), image, "t2", "sleep", "600")
    assert r.returncode == 0, r.stderr
    r = ctr("task", "exec", "--exec-id", "e1", "t2", "sh", "-c", "echo exec in $(pwd); exit 9")
    assert (r.returncode, r.stdout) == (9, "exec in /\n"), r.stderr
    assert "RUNNING" in ctr("task", "ls").stdout
    boxes = json.loads(cli.run("ls", "--format", "json").stdout)
    assert [b["managed_by"] for b in boxes] == ["containerd"], boxes  # its shim's --root says so
    assert ctr("task", "kill", "-s", "SIGTERM", "t2").returncode == 0
    for _ in range(100):
        if "STOPPED" in ctr("task", "ls").stdout:
            break
        time.sleep(0.2)
    assert "STOPPED" in ctr("task", "ls").stdout
    r = ctr("task", "delete", "t2")
    assert r.returncode == 0 and "143" in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert ctr("containers", "rm", "t2").returncode == 0
