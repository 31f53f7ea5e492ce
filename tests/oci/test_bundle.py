"""test_bundle.py — boxlite-runtime driven directly with a bundle, as the runtime-spec's
lifecycle says: create → created → start → running → the guest's exit status → stopped →
delete; stdin from the caller, kill reaching the guest process, exec --process, hostile
bundles refused with a JSON log line and nothing started, and inbound TCP through a network
namespace the test makes (inbound.c)."""
import json
import os
import shutil
import select
import signal
import socket
import subprocess
import time

import pytest

from oci_helpers import config, wait_status

NS_HOST, NS_GUEST = "10.123.0.1", "10.123.0.2"  # the test's veth pair, nothing else


@pytest.fixture
def netns():
    """A network namespace of the test's own, joined to this one by a veth pair 10.123.0.0/30."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iptables"):
        pytest.skip("needs root, ip and iptables")
    name, veth = f"bltest{os.getpid()}", f"blv{os.getpid()}"
    for c in (f"netns add {name}", f"link add {veth}a type veth peer name {veth}b",
              f"link set {veth}b netns {name}", f"addr add {NS_HOST}/30 dev {veth}a",
              f"link set {veth}a up", f"-n {name} addr add {NS_GUEST}/30 dev {veth}b",
              f"-n {name} link set {veth}b up", f"-n {name} link set lo up"):
        subprocess.run(["ip"] + c.split(), check=True)
    yield name
    subprocess.run(["ip", "link", "del", f"{veth}a"])
    subprocess.run(["ip", "netns", "del", name])


def http_get(host, port, deadline):
    """One GET /, retried until deadline (the VM boots under TCG): the body, or None."""
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=10) as s:
                s.settimeout(20)
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            if b"\r\n\r\n" in data:
                return data.split(b"\r\n\r\n", 1)[1].decode()
        except OSError:
            pass
        time.sleep(1)
    return None


def test_lifecycle_status_stdin_hostname(runtime, cli):
    b = runtime.bundle("b1", config(["/bin/sh", "-c",
                                     'echo "hello from $(hostname) $GREETING"; cat; exit 7']))
    pid, out, err = runtime.create("c1", b, stdin_data="piped stdin\n")
    st = runtime.state("c1")
    assert st["status"] == "created" and st["pid"] == pid and st["bundle"] == str(b)
    os.kill(pid, 0)  # the keeper lives
    r = runtime.run("start", "c1")
    assert r.returncode == 0, r.stderr
    assert runtime.state("c1")["status"] in ("running", "stopped")
    assert wait_status(pid) == 7
    assert out.read_text() == "hello from ocitest from config.json\npiped stdin\n"
    st = runtime.state("c1")
    assert st["status"] == "stopped" and st["pid"] == 0
    box = st["annotations"]["io.boxlite.box"]
    assert box in cli.run("ls", "-a").stdout.decode()
    assert runtime.run("start", "c1").returncode != 0  # a stopped container does not restart
    r = runtime.run("delete", "c1")
    assert r.returncode == 0, r.stderr
    assert runtime.run("state", "c1").returncode != 0
    assert box not in cli.run("ls", "-a").stdout.decode()


def test_kill_reaches_guest_and_exec(runtime):
    b = runtime.bundle("b2", config(["/bin/sleep", "600"]))
    pid, out, err = runtime.create("c2", b)
    assert runtime.run("start", "c2").returncode == 0
    assert runtime.state("c2")["status"] == "running"
    proc = runtime.tmp / "p.json"
    proc.write_text(json.dumps({"args": ["/bin/sh", "-c", "echo in $(pwd) as $(id -u); exit 3"],
                                "cwd": "/tmp", "env": ["PATH=/bin"],
                                "user": {"uid": 0, "gid": 0}}))
    r = runtime.run("exec", "--process", proc, "c2")
    assert (r.returncode, r.stdout) == (3, "in /tmp as 0\n"), r.stderr
    assert json.loads(runtime.run("ps", "--format", "json", "c2").stdout) == [pid]
    assert runtime.run("delete", "c2").returncode != 0  # running: refused without --force
    assert runtime.run("kill", "c2", "TERM").returncode == 0
    assert wait_status(pid) == 128 + signal.SIGTERM  # the guest's sleep died of SIGTERM
    assert runtime.run("kill", "c2", "KILL").returncode != 0  # stopped
    assert runtime.run("delete", "c2").returncode == 0


def test_delete_force_running(runtime):
    b = runtime.bundle("b3", config(["/bin/sleep", "600"]))
    pid, _, _ = runtime.create("c3", b)
    assert runtime.run("start", "c3").returncode == 0
    assert runtime.run("delete", "--force", "c3").returncode == 0
    assert wait_status(pid) == -signal.SIGKILL
    assert not (runtime.root / "c3").exists()


HOSTILE = {
    "not json": "{",
    "root outside the bundle": config(["/bin/true"], root={"path": "../outside"}),
    "root dot-dot inside": config(["/bin/true"], root={"path": "rootfs/../../outside"}),
    "absurd memory": config(["/bin/true"], linux={"resources": {"memory": {"limit": 1 << 60}}}),
    "absurd cpus": config(["/bin/true"], linux={"resources": {"cpu": {"quota": 10**11,
                                                                     "period": 100000}}}),
    "root symlink leading out": config(["/bin/true"], root={"path": "link"}),
    "empty args": config([]),
    "relative mount": config(["/bin/true"], mounts=[{"destination": "etc/x", "type": "bind",
                                                    "source": "/tmp", "options": ["rbind"]}]),
    "mount climbing": config(["/bin/true"], mounts=[{"destination": "/a/../../x",
                                                    "type": "tmpfs", "source": "tmpfs"}]),
    "args not strings": config([1, 2]),
    "nul in arg": '{"ociVersion":"1","root":{"path":"rootfs"},"process":{"cwd":"/",'
                  '"args":["a\\u0000b"]}}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_bundle_refused(runtime, cli, name):
    cfg = HOSTILE[name]
    b = runtime.bundle("hb", config(["/bin/true"]))
    (runtime.tmp / "outside").mkdir(exist_ok=True)
    (b / "link").symlink_to(runtime.tmp / "outside")
    (b / "config.json").write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
    before = cli.run("ls", "-a", "-q").stdout
    r = runtime.run("create", "--bundle", b, "--pid-file", runtime.tmp / "h.pid", "hc")
    assert r.returncode != 0
    lines = runtime.log_lines()
    assert lines and lines[-1]["level"] == "error" and lines[-1]["msg"], lines
    assert not (runtime.tmp / "h.pid").exists()
    assert not (runtime.root / "hc").exists()
    assert cli.run("ls", "-a", "-q").stdout == before  # no box was made


def test_network_namespace_path(runtime, cli):
    """config.json's network namespace (CNI's, podman's) is where the VM's network lives:
    the keeper and the box monitor (whose user-mode stack carries the guest's traffic) run
    in it. The namespace is made by the test and has only loopback."""
    name = f"boxlite-oci-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        ns = os.stat(f"/run/netns/{name}").st_ino
        cfg = config(["/bin/sleep", "600"], linux={"namespaces": [
            {"type": "network", "path": f"/run/netns/{name}"}]})
        pid, _, _ = runtime.create("cn", runtime.bundle("bn", cfg))
        box = runtime.state("cn")["annotations"]["io.boxlite.box"]
        shim = json.loads(cli.run("inspect", box).stdout)[0]["state"]["pid"]
        assert shim > 0
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == ns
        assert os.stat(f"/proc/{shim}/ns/net").st_ino == ns
        assert os.stat("/proc/self/ns/net").st_ino != ns
        assert runtime.run("delete", "--force", "cn").returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", name], timeout=30)


def test_inbound_tcp_through_netns(runtime, netns):
    """config.json names a namespace of its own: a TCP connection to the namespace's address
    reaches httpd inside the VM (the keeper's REDIRECT rule and relay); a port nobody listens
    on in the guest is accepted and closed (end of file); the keeper removes its rule as it ends."""
    nspath = f"/run/netns/{netns}"
    b = runtime.bundle("bn", config(["/bin/sh", "-c", "echo from-the-vm > /index.html; "
                                     "exec httpd -f -p 8080 -h /"],
                                    linux={"namespaces": [{"type": "network", "path": nspath}]}))
    pid, _, err = runtime.create("cn", b)
    try:
        assert runtime.run("start", "cn").returncode == 0
        assert http_get(NS_GUEST, 8080, time.monotonic() + 180) == "from-the-vm\n", err.read_text()
        with socket.create_connection((NS_GUEST, 9999), timeout=30) as s:
            s.settimeout(30)
            assert s.recv(10) == b""
        # hostile peers: 300 connections that never send; the keeper relays at most 256 at
        # once and closes the rest at accept; once they go, it serves again
        held = []
        try:
            for _ in range(300):
                held.append(socket.create_connection((NS_GUEST, 8080), timeout=30))
            open_ = set(held)
            deadline = time.monotonic() + 60
            while len(open_) > 256 and time.monotonic() < deadline:
                ready, _, _ = select.select(list(open_), [], [], 1)
                for c in ready:  # readable with nothing sent: the keeper closed it
                    if c.recv(1) == b"":
                        open_.discard(c)
            assert len(open_) <= 256, len(open_)  # the rest were closed at accept
        finally:
            for c in held:
                c.close()
        assert http_get(NS_GUEST, 8080, time.monotonic() + 180) == "from-the-vm\n"
        assert runtime.run("kill", "cn", "TERM").returncode == 0
        assert wait_status(pid) == 128 + signal.SIGTERM  # the keeper ends with its process
    finally:
        runtime.run("delete", "--force", "cn")
    rules = subprocess.run(["ip", "netns", "exec", netns, "iptables", "-t", "nat", "-S"],
                           capture_output=True, text=True).stdout
    assert "REDIRECT" not in rules, rules
