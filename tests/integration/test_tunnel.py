"""test_tunnel.py — `boxlite port-forward` (boxlite_box_tunnel under it) against servers inside
a real box: exact bytes both ways, many tunnels at once, ends from either side (half-close
included), a port nothing listens on. Every peer is the host's 127.0.0.1 or the box's own."""
import os
import socket
import subprocess
import threading
import time

import pytest

BOX = "tunnel-box"
ECHO = 7000  # busybox nc -ll -e cat: echoes each connection until its input ends
HTTP = 8080  # busybox httpd: answers one request and closes
BOUND_S = 120


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


@pytest.fixture(scope="module")
def box(cli):
    cli.run("rm", "-f", BOX)
    ok(cli.run("create", "--name", BOX))
    ok(cli.run("start", BOX, timeout=300))
    ok(cli.run("exec", BOX, "--", "sh", "-c",
               "mkdir -p /www && echo served-from-the-box > /www/index.html && "
               f"httpd -p {HTTP} -h /www && "
               f"(setsid nc -ll -p {ECHO} -e cat </dev/null >/dev/null 2>&1 &) && "
               f"for i in $(seq 50); do netstat -ltn | grep -q :{ECHO} && exit 0; sleep 0.2; "
               "done; exit 1"))
    yield BOX
    cli.run("rm", "-f", BOX, timeout=120)


class PortForward:
    """`boxlite port-forward BOX :GUEST...` for the block; .ports are the local ports."""

    def __init__(self, cli, box, *guest):
        self.cli, self.box, self.guest = cli, box, guest

    def __enter__(self):
        self.p = self.cli.popen("port-forward", self.box, *[f":{g}" for g in self.guest],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.ports = []
        for g in self.guest:
            line = self.p.stdout.readline().decode()
            assert line.startswith("Forwarding from 127.0.0.1:") and line.endswith(
                f" -> {g}\n"), (line, self.p.stderr.read())
            self.ports.append(int(line.split(":")[1].split()[0]))
        return self

    def stop(self):
        """End it (SIGTERM; SIGKILL when it does not go in 30 s); its stderr."""
        self.p.terminate()
        try:
            return self.p.communicate(timeout=30)[1].decode(errors="replace")
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.communicate()[1].decode(errors="replace") + "\n(killed)"

    def stderr(self):
        return self.stop()

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.stop()
        return False


def round_trip(port, data):
    """Send data, half-close, read the echo to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND_S) as s:
        got = bytearray()

        def reader():
            while True:
                b = s.recv(65536)
                if not b:
                    return
                got.extend(b)
        t = threading.Thread(target=reader)
        t.start()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        t.join(BOUND_S)
        assert not t.is_alive(), "the echo never ended"
        return bytes(got)


def established(cli, port):
    r = ok(cli.run("exec", BOX, "--", "sh", "-c", f"netstat -tn | grep -c '127.0.0.1:{port} .*ESTABLISHED' || true"))
    return int(r.stdout.decode().strip() or 0)


def test_one_mib_round_trips_exactly(cli, box):
    data = os.urandom(1 << 20)
    with PortForward(cli, box, ECHO) as pf:
        assert round_trip(pf.ports[0], data) == data


def test_ten_tunnels_at_once(cli, box):
    blobs = [os.urandom(200_000 + i) for i in range(10)]
    results = [None] * 10
    with PortForward(cli, box, ECHO) as pf:
        def one(i):
            results[i] = round_trip(pf.ports[0], blobs[i])
        ts = [threading.Thread(target=one, args=(i,)) for i in range(10)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(BOUND_S * 2)
    assert [r == b for r, b in zip(results, blobs)] == [True] * 10


def test_the_guest_side_ends_first(cli, box):
    """httpd answers and closes: the client reads the whole answer, then end of file, while
    its own direction was never closed."""
    with PortForward(cli, box, HTTP) as pf:
        with socket.create_connection(("127.0.0.1", pf.ports[0]), timeout=BOUND_S) as s:
            s.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
            got = bytearray()
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got.extend(b)
    assert got.startswith(b"HTTP/1.") and got.endswith(b"served-from-the-box\n"), got


def test_half_close_from_the_host_keeps_the_other_direction(cli, box):
    """shutdown(SHUT_WR) reaches the guest server as end of input; its answer still arrives."""
    with PortForward(cli, box, ECHO) as pf:
        with socket.create_connection(("127.0.0.1", pf.ports[0]), timeout=BOUND_S) as s:
            s.sendall(b"before-the-end\n")
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            while True:
                b = s.recv(65536)
                if not b:
                    break
                got.extend(b)
    assert bytes(got) == b"before-the-end\n"


def test_a_host_close_ends_the_guest_connection(cli, box):
    """Closing the client (no half-close, the server still talking) leaves no connection
    behind in the guest."""
    with PortForward(cli, box, ECHO) as pf:
        s = socket.create_connection(("127.0.0.1", pf.ports[0]), timeout=BOUND_S)
        s.sendall(b"x")
        assert s.recv(1) == b"x"
        assert established(cli, ECHO) >= 1
        s.close()
        deadline = time.monotonic() + 60
        while established(cli, ECHO) and time.monotonic() < deadline:
            time.sleep(1)
        assert established(cli, ECHO) == 0


def test_a_port_nothing_listens_on_is_refused_clearly(cli, box):
    with PortForward(cli, box, 7999) as pf:
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", pf.ports[0]), timeout=BOUND_S) as s:
            try:
                got = s.recv(10)
            except ConnectionResetError:
                got = b""
        took = time.monotonic() - t0
        err = pf.stderr()
    assert got == b"" and took < 60, (got, took)
    assert "connect 127.0.0.1:7999: Connection refused" in err, err


def test_bad_specs_and_boxes(cli, box):
    r = cli.run("port-forward", box, "0")
    assert r.returncode == 2 and b"bad port spec" in r.stderr, r
    r = cli.run("port-forward", box, "1:70000")
    assert r.returncode == 2, r
    r = cli.run("port-forward", "no-such-box", ":80", timeout=30)
    assert r.returncode != 0 and b"no-such-box" in r.stderr, r
