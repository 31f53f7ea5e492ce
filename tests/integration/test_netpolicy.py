"""test_netpolicy.py — the egress policy the box monitor enforces on the host side, through
real boxes. Every peer lives in two network namespaces this file creates and removes:

  blnp-box-N  the "host": the CLI, the shim and QEMU run here; 198.51.100.1 on a veth, and
              servers on its 127.0.0.1 and on 198.51.100.1 (the host's own address)
  blnp-net-N  "the internet" at the veth's other end (198.51.100.2): a DNS server, and TCP
              servers on 203.0.113.10/.20/.30 (TEST-NET-3), 10.99.0.10 (a private address)
              and 169.254.169.254 (link-local, cloud metadata), all only inside it.

No packet leaves these namespaces."""
import ctypes
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from boxlite_paths import BOXLITE
from test_network import free_port, ok, serve_dns

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"),
    reason="needs root: creates network namespaces")

CLONE_NEWNET = 0x40000000
INTERNET = {"203.0.113.10", "203.0.113.20", "203.0.113.30", "10.99.0.10", "169.254.169.254"}
NAMES = {"allowed.test": "203.0.113.10", "denied.test": "203.0.113.20",
         "a.wild.test": "203.0.113.30", "wild.test": "203.0.113.30"}
_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(ns, fn):
    """fn() run on a thread that entered namespace ns: the sockets it makes stay there."""
    out = {}

    def run():
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                out["err"] = OSError(ctypes.get_errno(), "setns")
                return
        finally:
            os.close(fd)
        try:
            out["v"] = fn()
        except Exception as e:  # raised again on the caller's thread
            out["err"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    if "err" in out:
        raise out["err"]
    return out["v"]


def serve_hello(srv):
    """Answer each connection with "hello from ADDR:PORT" (bounded by closing srv)."""
    while True:
        try:
            c, _ = srv.accept()
        except OSError:
            return
        with c:
            a = c.getsockname()
            c.sendall(f"hello from {a[0]}:{a[1]}\n".encode())


def tcp_server(ns, addr, port):
    def make():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(16)
        return s
    s = in_netns(ns, make)
    threading.Thread(target=serve_hello, args=(s,), daemon=True).start()
    return s


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    n = os.getpid() % 100000
    box, net, vb, vn = f"blnp-box-{n}", f"blnp-net-{n}", f"blvb{n}", f"blvn{n}"
    socks = []
    try:
        sh("ip", "netns", "add", box)
        sh("ip", "netns", "add", net)
        sh("ip", "link", "add", vb, "netns", box, "type", "veth", "peer", "name", vn, "netns", net)
        for ns, dev, addr in ((box, vb, "198.51.100.1/24"), (net, vn, "198.51.100.2/24")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", box, "route", "add", "default", "via", "198.51.100.2")
        for a in INTERNET:
            sh("ip", "-n", net, "addr", "add", a + "/32", "dev", "lo")
        for port in (8080, 8081):
            socks.append(tcp_server(net, "0.0.0.0", port))
        lo_port, self_port = free_port(), free_port()
        socks.append(tcp_server(box, "127.0.0.1", lo_port))
        socks.append(tcp_server(box, "198.51.100.1", self_port))
        udp = in_netns(box, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        udp.bind(("127.0.0.1", 53))  # the guest's nslookup can aim UDP at port 53 only
        udp.settimeout(0.2)
        socks.append(udp)
        dns = in_netns(net, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        dns.bind(("198.51.100.2", 53))
        socks.append(dns)
        threading.Thread(target=serve_dns, args=(dns, NAMES), daemon=True).start()
        resolv = tmp_path_factory.mktemp("netpolicy") / "resolv.conf"
        resolv.write_text("nameserver 198.51.100.2\n")
        yield {"box": box, "resolv": resolv, "lo_port": lo_port, "self_port": self_port,
               "udp": udp}
    finally:
        for s in socks:
            s.close()
        subprocess.run(["ip", "netns", "del", box], capture_output=True)
        subprocess.run(["ip", "netns", "del", net], capture_output=True)


def ns_cli(box_env, nets, *args, timeout=240):
    """The CLI run on the namespace's "host", its resolver the namespace's DNS server."""
    cmd = ["ip", "netns", "exec", nets["box"], "unshare", "-m", "sh", "-c",
           'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(nets["resolv"]),
           str(BOXLITE), *args]
    return subprocess.run(cmd, capture_output=True, env=box_env, timeout=timeout)


def probes(*targets):
    """A guest script: one line "TARGET: answer" per HOST:PORT, each bounded by nc -w."""
    return "; ".join(f"echo \"{t}: $(nc -w 4 {t.replace(':', ' ')} </dev/null 2>&1 | head -c 80)\""
                     for t in targets)


def answers(out):
    got = {}
    for line in out.splitlines():
        if ": " in line:
            k, v = line.split(": ", 1)
            got[k] = v
    return got


def reached(got, target, ip):
    return got.get(target, "").startswith(f"hello from {ip}:")


def test_default_reaches_the_internet_but_not_the_host_private_or_link_local(box_env, nets):
    lo, me = nets["lo_port"], nets["self_port"]
    script = probes(f"10.0.2.2:{lo}", f"198.51.100.1:{me}", "203.0.113.10:8080",
                    "allowed.test:8081", "10.99.0.10:8080", "169.254.169.254:8080",
                    f"10.0.2.3:{lo}", f"127.0.0.1:{lo}")
    # guest root tries another source address, and UDP to the host's loopback
    script += (f"; ip addr add 10.0.2.16/24 dev eth0; "
               f"echo \"alias: $(nc -w 4 -s 10.0.2.16 10.0.2.2 {lo} </dev/null 2>&1 | head -c 80)\"; "
               "timeout 5 nslookup probe.test 10.0.2.2 >/dev/null 2>&1; echo udp sent; "
               "echo \"direct: $(timeout 6 nslookup allowed.test 198.51.100.2 2>&1 | "
               "grep -c 203.0.113.10)\"")
    r = ns_cli(box_env, nets, "run", "--rm", "--", "sh", "-c", script)
    out = r.stdout.decode()
    got = answers(out)
    assert "udp sent" in out, out + r.stderr.decode()
    assert reached(got, "203.0.113.10:8080", "203.0.113.10"), out
    assert reached(got, "allowed.test:8081", "203.0.113.10"), out  # DNS through the host
    assert got.get("direct") == "1", out  # a resolver on the internet is the internet
    for t in (f"10.0.2.2:{lo}", f"198.51.100.1:{me}", "10.99.0.10:8080",
              "169.254.169.254:8080", f"10.0.2.3:{lo}", f"127.0.0.1:{lo}", "alias"):
        assert "hello" not in got.get(t, ""), (t, out)
    with pytest.raises(socket.timeout):
        nets["udp"].recvfrom(64)


def test_allow_net_names_wildcards_and_cidrs(box_env, nets):
    script = probes("allowed.test:8080", "allowed.test:8081", "denied.test:8080",
                    "203.0.113.20:8080", "a.wild.test:8080", "wild.test:8081",
                    "10.99.0.10:8080", "10.99.0.10:8081", "169.254.169.254:8080")
    # a resolver of its own is one more destination the allowlist does not name
    script += ("; echo \"direct: $(timeout 6 nslookup allowed.test 198.51.100.2 2>&1 | "
               "grep -c 203.0.113.10)\"")
    r = ns_cli(box_env, nets, "run", "--rm", "--allow-net", "allowed.test",
               "--allow-net", "*.wild.test:8080", "--allow-net", "10.99.0.0/24:8080", "--",
               "sh", "-c", script)
    got = answers(r.stdout.decode())
    out = r.stdout.decode() + r.stderr.decode()
    assert reached(got, "allowed.test:8080", "203.0.113.10"), out
    assert reached(got, "allowed.test:8081", "203.0.113.10"), out
    assert reached(got, "a.wild.test:8080", "203.0.113.30"), out
    assert reached(got, "10.99.0.10:8080", "10.99.0.10"), out
    assert got.get("direct") == "0", out
    for t in ("denied.test:8080", "203.0.113.20:8080", "wild.test:8081", "10.99.0.10:8081",
              "169.254.169.254:8080"):
        assert t in got and "hello" not in got[t], (t, out)


def test_published_port_answers_and_a_clone_keeps_the_allowlist(box_env, nets):
    port = free_port()
    name = f"np-pub-{os.getpid()}"
    ok(ns_cli(box_env, nets, "create", "--name", name, "-p", f"{port}:80",
              "--allow-net", "allowed.test"))
    try:
        ok(ns_cli(box_env, nets, "start", name))
        ok(ns_cli(box_env, nets, "exec", name, "--", "sh", "-c",
                  "mkdir -p /www && echo served from the box > /www/index.html && "
                  "httpd -p 80 -h /www"))

        def fetch():
            with socket.create_connection(("127.0.0.1", port), timeout=20) as c:
                c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                return data
        assert b"served from the box" in in_netns(nets["box"], fetch)
        r = ns_cli(box_env, nets, "exec", name, "--", "sh", "-c", probes("203.0.113.20:8080"))
        assert "hello" not in r.stdout.decode(), r.stdout
        box_id = json.loads(ok(ns_cli(box_env, nets, "inspect", name)).stdout)[0]["id"]
        log = open(os.path.join(box_env["BOXLITE_HOME"], "boxes", box_id, "shim.log")).read()
        assert "net: denied tcp to 203.0.113.20:8080" in log, log
        # a clone carries the policy: copying a box never widens it
        ok(ns_cli(box_env, nets, "stop", name))
        ok(ns_cli(box_env, nets, "clone", name, name + "-c"))
        ok(ns_cli(box_env, nets, "start", name + "-c"))
        for b in (name, name + "-c"):
            info = json.loads(ok(ns_cli(box_env, nets, "inspect", b)).stdout)[0]
            assert info["allow_net"] == ["allowed.test"], info
        r = ns_cli(box_env, nets, "exec", name + "-c", "--", "sh", "-c",
                   probes("allowed.test:8080", "203.0.113.20:8080"))
        got = answers(r.stdout.decode())
        assert reached(got, "allowed.test:8080", "203.0.113.10"), r.stdout
        assert "hello" not in got["203.0.113.20:8080"], r.stdout
    finally:
        ns_cli(box_env, nets, "rm", "-f", name + "-c")
        ns_cli(box_env, nets, "rm", "-f", name)


def test_network_none_reaches_nothing(box_env, nets):
    r = ns_cli(box_env, nets, "run", "--rm", "--network", "none", "--", "sh", "-c",
               "ls /sys/class/net; " + probes("203.0.113.10:8080"))
    out = r.stdout.decode()
    assert out.split()[0] == "lo" and "eth0" not in out, out
    assert "203.0.113.10:8080" in answers(out) and "hello" not in out, out


@pytest.mark.parametrize("spec", ["", "exa mple.com", "1.2.3.4/33", "host:0", "host:70000",
                                  "[::1]:80", "*.", "a..b"])
def test_bad_allow_net_is_refused_at_create(cli, spec):
    r = cli.run("create", "--name", "np-bad", "--allow-net", spec)
    assert r.returncode == 125 and b"allow_net" in r.stderr, r.stderr
    assert cli.run("inspect", "np-bad").returncode == 125


def test_allow_net_with_network_none_is_refused(cli):
    r = cli.run("create", "--network", "none", "--allow-net", "example.com")
    assert r.returncode == 125 and b"allow_net" in r.stderr, r.stderr

