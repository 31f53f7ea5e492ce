"""test_network.py — outbound NAT, no network, published ports and 9p volumes, through real
boxes; every network peer is on the host's 127.0.0.1."""
import json
import os
import socket
import threading
import time
import http.server
import socketserver
import urllib.request

import shutil
import struct
import subprocess

import pytest

from boxlite_paths import BOXLITE


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def host_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "hello.txt").write_text("hello from the host\n")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()


def test_outbound_nat_is_configured_but_the_hosts_loopback_is_not_reachable(cli, host_server):
    """The gateway 10.0.2.2 no longer leads to the host's 127.0.0.1 (test_netpolicy.py has
    the whole policy)."""
    r = ok(cli.run("run", "--rm", "--name", "nat-box", "--", "sh", "-c",
                   f"nc -w 5 10.0.2.2 {host_server} </dev/null; echo nc=$?; "
                   "cat /etc/resolv.conf; ip route; hostname; grep nat-box /etc/hosts"))
    out = r.stdout.decode()
    assert "nc=1" in out
    assert "nameserver 10.0.2.3" in out  # the shim's user-mode DNS, which asks the host resolver
    assert "default via 10.0.2.2" in out
    assert out.count("nat-box") == 2


def test_network_none_has_only_loopback_and_fails_fast(cli, host_server):
    t = time.monotonic()
    r = cli.run("run", "--rm", "--network", "none", "--", "sh", "-c",
                "ls /sys/class/net; nc -w 5 10.0.2.2 %d </dev/null; echo rc=$?" % host_server)
    elapsed = time.monotonic() - t
    out = r.stdout.decode()
    assert out.split()[0] == "lo" and "eth0" not in out
    assert "rc=1" in out
    assert b"unreachable" in r.stderr.lower()
    assert elapsed < 30


def test_published_port_answers_and_cannot_be_shared(cli):
    port = free_port()
    ok(cli.run("create", "--name", "web-a", "-p", f"{port}:80"))
    ok(cli.run("create", "--name", "web-b", "-p", f"{port}:8080"))
    try:
        ok(cli.run("start", "web-a"))
        ok(cli.run("exec", "web-a", "--", "sh", "-c",
                   "mkdir -p /www && echo served from the box > /www/index.html && "
                   "httpd -p 80 -h /www"))
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20).read()
        assert body == b"served from the box\n"
        info = json.loads(ok(cli.run("inspect", "web-a")).stdout)[0]
        assert info["published_ports"] == f"127.0.0.1:{port}->80/tcp"
        r = cli.run("start", "web-b")
        assert r.returncode == 125 and b"not available" in r.stderr and str(port).encode() in r.stderr
        # published on 127.0.0.1 only
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.2", port), timeout=2).close()
        ok(cli.run("rm", "-f", "web-a"))
        ok(cli.run("start", "web-b"))  # the port is free again
    finally:
        cli.run("rm", "-f", "web-a")
        cli.run("rm", "-f", "web-b")


def test_published_port_on_a_chosen_address(cli):
    """-p IP:HOST:GUEST listens on IP only (127.0.0.2 here: loopback, not the default)."""
    port = free_port()
    try:
        ok(cli.run("run", "-d", "--name", "web-ip", "-p", f"127.0.0.2:{port}:80", "--", "sh",
                   "-c", "mkdir -p /www && echo on 127.0.0.2 > /www/index.html && "
                   "httpd -p 80 -h /www && echo up"))
        info = json.loads(ok(cli.run("inspect", "web-ip")).stdout)[0]
        assert info["published_ports"] == f"127.0.0.2:{port}->80/tcp"
        body = urllib.request.urlopen(f"http://127.0.0.2:{port}/", timeout=20).read()
        assert body == b"on 127.0.0.2\n"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        cli.run("rm", "-f", "web-ip")


def test_volumes_rw_ro_spaces_and_persist_across_restart(cli, tmp_path):
    rw = tmp_path / "rw dir with spaces"
    ro = tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (rw / "from-host.txt").write_text("host wrote this\n")
    (ro / "secret.txt").write_text("read only\n")
    os.chown(ro / "secret.txt", 1000, 1000)
    os.chmod(ro / "secret.txt", 0o640)
    port = free_port()
    ok(cli.run("create", "--name", "vol-box", "-v", f"{rw}:/data", "-v", f"{ro}:/ro:ro",
               "-p", f"{port}:80"))
    try:
        for cycle in range(2):
            ok(cli.run("start", "vol-box"))
            r = ok(cli.run("exec", "vol-box", "--", "sh", "-c",
                           f"cat /data/from-host.txt; echo guest{cycle} > /data/from-guest{cycle}.txt; "
                           "cat /ro/secret.txt; stat -c '%u:%g %a' /ro/secret.txt"))
            assert r.stdout.decode().splitlines() == ["host wrote this", "read only", "1000:1000 640"]
            assert (rw / f"from-guest{cycle}.txt").read_text() == f"guest{cycle}\n"
            r = ok(cli.run("exec", "-u", "1000", "vol-box", "--", "cat", "/ro/secret.txt"))
            assert r.stdout == b"read only\n"
            r = cli.run("exec", "vol-box", "--", "sh", "-c",
                        "echo x > /ro/new.txt; echo w=$?; mount -o remount,rw /ro; "
                        "echo y > /ro/new2.txt; echo w2=$?")
            out = r.stdout.decode()
            assert "w=1" in out and "w2=1" in out, out + r.stderr.decode()
            assert sorted(p.name for p in ro.iterdir()) == ["secret.txt"]
            info = json.loads(ok(cli.run("inspect", "vol-box")).stdout)[0]
            assert info["volumes"] == f"{rw}:/data, {ro}:/ro:ro"
            assert info["published_ports"] == f"127.0.0.1:{port}->80/tcp"
            ok(cli.run("stop", "vol-box"))
    finally:
        cli.run("rm", "-f", "vol-box")


def test_missing_volume_host_path_is_a_clear_error(cli, tmp_path):
    r = cli.run("create", "--name", "bad-vol", "-v", f"{tmp_path}/nope:/x")
    assert r.returncode == 125
    assert b"does not exist" in r.stderr and b"nope" in r.stderr
    assert cli.run("inspect", "bad-vol").returncode == 125


def serve_dns(sock, names):
    """A tiny DNS responder: A records for names, NXDOMAIN otherwise (bounded by the socket)."""
    while True:
        try:
            data, addr = sock.recvfrom(512)
        except OSError:
            return
        i, labels = 12, []
        while i < len(data) and data[i]:
            labels.append(data[i + 1:i + 1 + data[i]].decode(errors="replace"))
            i += 1 + data[i]
        question = data[12:i + 5]
        qtype = struct.unpack(">H", data[i + 1:i + 3])[0] if i + 3 <= len(data) else 0
        name = ".".join(labels)
        head = data[:2]
        if name in names and qtype == 1:
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(names[name])
            sock.sendto(head + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + question + answer, addr)
        else:
            sock.sendto(head + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + question, addr)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root: binds 127.0.0.1:53 and a private /etc/resolv.conf")
def test_dns_in_the_box_goes_through_the_host_resolver(box_env, tmp_path):
    """The box asks QEMU's DNS (10.0.2.3), which asks the host's resolver: here a resolver
    the test serves on 127.0.0.1:53, made the host's in a private mount namespace."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 53))
    threading.Thread(target=serve_dns, args=(sock, {"box-test.example": "10.0.2.2"}),
                     daemon=True).start()
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\n")
    try:
        r = subprocess.run(
            ["unshare", "-m", "sh", "-c",
             f"mount --bind {resolv} /etc/resolv.conf && exec {BOXLITE} run --rm -- "
             "nslookup box-test.example"],
            capture_output=True, env=box_env, timeout=120)
    finally:
        sock.close()
    out = r.stdout.decode()
    assert "Address: 10.0.2.2" in out and "box-test.example" in out, out + r.stderr.decode()
