"""test_serve_stdin.py — stdin through `boxlite serve`'s one event loop, attacked: processes
that never read their stdin, each sent megabytes, hold nothing but their own 1 MiB inbox (no
thread, no turn of anybody else's stdin), while another attachment's stdin still echoes at
once; stdin and the control messages after it keep their order."""
import json
import socket
import time

import pytest
import websocket

from serve_helpers import attach, read_until_exit, running_box, threads

STUCK = 3
CHUNK = 64 << 10


@pytest.fixture(scope="module")
def box(api):
    yield from running_box(api, "serve-stdin")


def start_exec(api, box, *argv):
    st, _, b = api.call("POST", f"/boxes/{box}/exec", {"command": argv[0], "args": list(argv[1:])})
    assert st == 201, b
    return b["execution_id"]


def stuff(ws, limit):
    """Send stdin in 64 KiB messages until the server stops taking it (the socket's send
    times out: its inbox and the kernel's buffers are full) or `limit` bytes went."""
    ws.sock.settimeout(3)
    sent = 0
    try:
        while sent < limit:
            ws.send_binary(b"s" * CHUNK)
            sent += CHUNK
    except (socket.timeout, websocket.WebSocketTimeoutException):
        pass
    return sent


def echo(ws, token, limit_s):
    """Send token, read stdout until it comes back; the seconds it took."""
    t0 = time.monotonic()
    ws.sock.settimeout(limit_s)
    ws.send_binary(token)
    got = b""
    while token not in got:
        assert time.monotonic() - t0 < limit_s, f"no echo of {token!r} in {limit_s} s: {got!r}"
        op, data = ws.recv_data(control_frame=True)  # pings too: the deadline is checked
        if op in (9, 10):
            continue
        assert op == 2 and data[:1] == b"\x01", (op, data)
        got += data[1:]
    return time.monotonic() - t0


def test_stuck_stdin_costs_no_thread_and_blocks_nobody(api, box, server):
    cat_id = start_exec(api, box, "cat")
    cat = attach(api, box, cat_id, timeout=120)
    echo(cat, b"warm-up\n", 120)
    base = threads(server.proc.pid)
    stuck, ids = [], []
    try:
        for i in range(STUCK):
            ids.append(start_exec(api, box, "sleep", "600"))
            stuck.append(attach(api, box, ids[-1], timeout=60))
        sent = [stuff(ws, 6 << 20) for ws in stuck]
        # each took more than the guest's window and its own inbox hold: its stdin is stuck
        assert all(s > (1 << 20) + (256 << 10) for s in sent), sent
        for k in range(3):
            took = echo(cat, f"still-here-{k}\n".encode(), 60)
            assert took < 60
        during = threads(server.proc.pid)
        assert during <= base + 1, f"{during} server threads with {STUCK} stuck stdins, {base} before"
    finally:
        for ws in stuck:
            ws.close()
        for eid in ids:
            api.call("POST", f"/boxes/{box}/executions/{eid}/signal", {"signal": 15})
        cat.close()


def test_stdin_then_signal_then_eof_in_order(api, box):
    """384 KiB of stdin lines, SIGWINCH, then stdin_eof: the signal is handed on only after
    every line was, so the shell's trap (between two reads) sees at most the guest's window
    and pipe (320 KiB, 64 lines of slack) still unread; all lines come before stdin's end."""
    lines = 6144
    data = b"".join(b"%063d\n" % i for i in range(lines))
    script = ('n=0; trap \'echo "winch $n" >&2\' WINCH; '
              'while :; do read -r l; rc=$?; [ $rc -gt 128 ] && continue; '
              '[ $rc -ne 0 ] && break; n=$((n+1)); done; echo "lines $n"')
    eid = start_exec(api, box, "sh", "-c", script)
    ws = attach(api, box, eid, timeout=300)
    for off in range(0, len(data), CHUNK):
        ws.send_binary(data[off:off + CHUNK])
    ws.send(json.dumps({"type": "signal", "sig": 28}))
    ws.send(json.dumps({"type": "stdin_eof"}))
    out, err, code, errors = read_until_exit(ws, limit_s=300)
    ws.close()
    assert (out, code, errors) == (b"lines %d\n" % lines, 0, []), (out, err, code, errors)
    assert err.startswith(b"winch ") and int(err.split()[1]) >= lines - (320 << 10) // 64 - 64, err
