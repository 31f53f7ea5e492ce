"""test_serve_tls.py — `boxlite serve --tls-cert/--tls-key`: TLS on one event thread in front
of the daemon (src/serve/tls.c). wss attachments cost no thread each; clients that never
handshake, speak plain HTTP to the TLS port, stall inside their headers or come in a flood are
closed within their bounds while the server keeps serving."""
import json
import socket
import ssl
import time

import pytest

from serve_helpers import KEY, Server, make_cert, read_until_exit, serve_env, threads


def tls_server(box_env, tmp_path, *extra):
    cert, key = make_cert(tmp_path)
    s = Server(serve_env(box_env), tmp_path, extra=("--tls-cert", str(cert), "--tls-key",
                                                    str(key), *extra))
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    return s, ctx, cert


def tls_call(port, ctx, method, path, body=None, timeout=60):
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        h = {"Authorization": f"Bearer {KEY}"}
        if body is not None:
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        c.request(method, "/v1" + path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data and "json" in r.getheader("content-type", "")
                          else data)
    finally:
        c.close()


def closed_within(sock, limit_s):
    """True when the peer ends sock (EOF or reset) within limit_s; bytes it sends first (a
    TLS alert) are read past."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if sock.recv(4096) == b"":
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
    return False


def test_wss_attachments_share_one_tls_thread(box_env, tmp_path):
    """40 executions attached over wss at once: the server's threads stay bounded (with
    libmicrohttpd's own TLS each upgraded connection kept a relay thread: 40+), and every one
    takes its stdin and gets its own output and exit frame through the TLS loop."""
    import websocket
    n = 40
    s, ctx, cert = tls_server(box_env, tmp_path, "--max-connections", str(n + 20),
                              "--max-execs-per-key", str(n + 20))
    socks, box = [], None
    try:
        st, b = tls_call(s.port, ctx, "POST", "/boxes", {"name": "tls-box", "memory_mib": 256})
        assert st == 201, b
        box = b["box_id"]
        st, b = tls_call(s.port, ctx, "POST", f"/boxes/{box}/start", timeout=600)
        assert st == 200, b
        ids = []
        for i in range(n):
            st, b = tls_call(s.port, ctx, "POST", f"/boxes/{box}/exec",
                             {"command": "sh",
                              "args": ["-c", f"read x; echo tls-{i}-$x; exit {i % 5}"]})
            assert st == 201, b
            ids.append(b["execution_id"])
        before = threads(s.proc.pid)
        for eid in ids:
            socks.append(websocket.create_connection(
                f"wss://127.0.0.1:{s.port}/v1/boxes/{box}/executions/{eid}/attach", timeout=120,
                header=[f"Authorization: Bearer {KEY}"],
                sslopt={"ca_certs": str(cert), "check_hostname": False}))
        time.sleep(1)
        during = threads(s.proc.pid)
        for i, ws in enumerate(socks):
            ws.send_binary(f"in{i}\n".encode())
        for i, ws in enumerate(socks):
            out, err, code, errors = read_until_exit(ws, limit_s=300)
            assert (out, err, code, errors) == (f"tls-{i}-in{i}\n".encode(), b"", i % 5, []), i
        assert during <= before + 4, f"{before} threads before, {during} with {n} wss attachments"
    finally:
        for ws in socks:
            ws.close()
        if box is not None:
            tls_call(s.port, ctx, "DELETE", f"/boxes/{box}?force=true", timeout=300)
        s.stop()


def test_hostile_tls_clients(box_env, tmp_path):
    """No handshake, plain HTTP on the TLS port, headers that never end: each closed within
    its bound (--header-timeout 2), and a good client is served after each."""
    s, ctx, _ = tls_server(box_env, tmp_path, "--header-timeout", "2")
    try:
        silent = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        assert closed_within(silent, 10), "a client that never starts its handshake stays open"
        silent.close()

        plain = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        plain.sendall(b"GET /v1/boxes HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed_within(plain, 10), "plain HTTP on the TLS port stays open"
        plain.close()

        slow = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port), timeout=10))
        slow.sendall(b"GET /v1/boxes HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no end of headers
        t0 = time.monotonic()
        assert closed_within(slow, 15), "headers that never end keep the connection"
        assert time.monotonic() - t0 >= 1
        slow.close()

        assert tls_call(s.port, ctx, "GET", "/boxes")[0] == 200
        assert s.proc.poll() is None
    finally:
        s.stop()


def test_tls_connection_flood_is_bounded(box_env, tmp_path):
    """--max-connections 6: six handshaken idle clients are held, the ones past them are
    closed at once (libmicrohttpd's limit applies to every client the TLS front accepts), and
    once the six go the server serves again."""
    s, ctx, _ = tls_server(box_env, tmp_path, "--max-connections", "6", "--header-timeout", "60")
    held, extra = [], []
    try:
        for _ in range(6):
            held.append(ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.port),
                                                                 timeout=10)))
        for _ in range(4):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            extra.append(c)
            assert closed_within(c, 5), "a client past --max-connections is kept"
        for c in held:
            assert not closed_within(c, 0.2), "a held client was dropped"
    finally:
        for c in held + extra:
            c.close()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert tls_call(s.port, ctx, "GET", "/boxes", timeout=10)[0] == 200
                break
            except (ConnectionError, ssl.SSLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        s.stop()


@pytest.mark.parametrize("bad", ["cert", "key"])
def test_bad_tls_files_are_refused(box_env, tmp_path, bad):
    cert, key = make_cert(tmp_path)
    (tmp_path / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    args = {"cert": cert, "key": key}
    args[bad] = tmp_path / "junk.pem"
    with pytest.raises(RuntimeError):
        Server(serve_env(box_env), tmp_path, extra=("--tls-cert", str(args["cert"]),
                                                    "--tls-key", str(args["key"])))
