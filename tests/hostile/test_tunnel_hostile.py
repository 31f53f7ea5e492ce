"""test_tunnel_hostile.py — tunnels against a hostile guest: inside a real box,
tests/hostile's boxlite-hostile takes the agent channel and answers the host's tunnel request
(`boxlite port-forward`'s `tunnel PORT` built-in) itself: data on stream ids never opened,
output without credit, a relay that never reads, one that sends as fast as credit allows to a
host reader that reads nothing, and one that never answers. Each must end in bounded time
with the host's memory bounded and the box still serving afterwards."""
import re
import socket
import subprocess
import time

import pytest

from hijack import IN_BOX, TOOL, Hijack, console, ok

BOX = "tunnel-hostile-box"
BOUND_S = 90  # TCG on a busy 2-core machine
WINDOW = 256 << 10  # BL_WINDOW_INIT


@pytest.fixture(scope="module")
def box(cli):
    if not TOOL.exists():
        pytest.skip(f"{TOOL} is not built (musl-gcc missing)")
    cli.run("rm", "-f", BOX)
    ok(cli.run("create", "--name", BOX, "-d"))
    ok(cli.run("start", BOX, timeout=300))
    ok(cli.run("cp", str(TOOL), f"{BOX}:{IN_BOX}"))
    yield BOX
    cli.run("rm", "-f", BOX, timeout=120)


class PortForward:
    """`boxlite port-forward BOX :GUEST` for the block; .port is the local port."""

    def __init__(self, cli, box, guest):
        self.cli, self.box, self.guest = cli, box, guest

    def __enter__(self):
        self.p = self.cli.popen("port-forward", self.box, f":{self.guest}",
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.p.stdout.readline().decode()
        assert line.startswith("Forwarding from 127.0.0.1:"), (line, self.p.stderr.read())
        self.port = int(line.split(":")[1].split()[0])
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


def read_until_end(s, limit, seconds=BOUND_S):
    """Everything s gives until its end (or limit bytes, or the bound): (bytes, how it ended)."""
    s.settimeout(seconds)
    got = bytearray()
    end = time.monotonic() + seconds
    while len(got) <= limit and time.monotonic() < end:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return bytes(got), "reset"
        if not b:
            return bytes(got), "eof"
        got.extend(b)
    return bytes(got), "open"


def said(cli, box, word):
    """The number the tool printed after `boxlite-hostile: WORD` (its last such line)."""
    lines = [ln for ln in console(cli, box).splitlines() if f"boxlite-hostile: {word} " in ln]
    assert lines, word
    return int(re.match(r"\d+", lines[-1].split(f"{word} ")[1]).group())


def alive(cli, box):
    r = ok(cli.run("exec", box, "--", "echo", "alive", timeout=120))
    assert r.stdout == b"alive\n"


def test_data_for_streams_never_opened_is_dropped(cli, box):
    """Only the tunnel's own stream reaches its socket; stray ids go nowhere."""
    with PortForward(cli, box, 7001) as pf, Hijack(cli, box, "t-stray"):
        with socket.create_connection(("127.0.0.1", pf.port), timeout=BOUND_S) as s:
            got, how = read_until_end(s, 1 << 20)
    assert (got, how) == (b"mine\n", "eof")
    alive(cli, box)


def test_output_without_credit_ends_the_tunnel_bounded(cli, box):
    """16 MiB against 256 KiB of credit to a client that reads nothing for 10 s: the library
    buffers at most one window per stream (as for any exec), so it refuses the rest and ends
    the tunnel: the client gets a prefix (what the socket buffers held), the forwarder lives."""
    t0 = time.monotonic()
    with PortForward(cli, box, 7002) as pf, Hijack(cli, box, "t-flood"):
        with socket.create_connection(("127.0.0.1", pf.port), timeout=BOUND_S) as s:
            time.sleep(10)
            got, how = read_until_end(s, 32 << 20)
        assert pf.p.poll() is None, pf.stderr()
    assert how in ("eof", "reset"), (len(got), how)
    assert len(got) < 16 << 20 and set(got) <= {ord("F")}, len(got)
    assert time.monotonic() - t0 < BOUND_S + 60
    alive(cli, box)


def test_a_relay_that_never_reads_gets_one_window(cli, box):
    """The host sends at most its credit (one window) to a guest that returns none, however
    much the client writes."""
    with PortForward(cli, box, 7003) as pf, Hijack(cli, box, "t-noread"):
        with socket.create_connection(("127.0.0.1", pf.port), timeout=BOUND_S) as s:
            s.setblocking(False)
            pushed, blob, end = 0, b"N" * 65536, time.monotonic() + 6
            while time.monotonic() < end:
                try:
                    pushed += s.send(blob)
                except BlockingIOError:
                    time.sleep(0.05)
            s.setblocking(True)
            got, how = read_until_end(s, 1 << 20)
    assert said(cli, box, "stdin") <= WINDOW, said(cli, box, "stdin")
    assert said(cli, box, "stdin") > 0 and pushed > said(cli, box, "stdin")
    assert how in ("eof", "reset"), how
    alive(cli, box)


def test_a_reader_that_reads_nothing_holds_the_guest_back(cli, box):
    """The host returns credit only as its caller reads: a client that reads nothing for 8 s
    lets the guest send one window plus what the host's socket buffers hold, not 64 MiB."""
    with PortForward(cli, box, 7004) as pf, Hijack(cli, box, "t-hoard"):
        with socket.create_connection(("127.0.0.1", pf.port), timeout=BOUND_S) as s:
            time.sleep(12)  # the tool's 8 s, read nothing
            got, how = read_until_end(s, 128 << 20)
    sent = said(cli, box, "sent")
    assert sent < 16 << 20, sent
    assert len(got) == sent and how == "eof", (len(got), sent, how)
    alive(cli, box)


def test_a_relay_that_never_answers_fails_the_tunnel_in_bounded_time(cli, box):
    t0 = time.monotonic()
    with PortForward(cli, box, 7005) as pf:
        with Hijack(cli, box, "t-silent"):
            with socket.create_connection(("127.0.0.1", pf.port), timeout=BOUND_S) as s:
                got, how = read_until_end(s, 1 << 20)
        err = pf.stderr()
    assert (got, how) == (b"", "eof") or how == "reset", (got, how)
    assert time.monotonic() - t0 < BOUND_S, time.monotonic() - t0
    assert "did not connect" in err, err
    alive(cli, box)
