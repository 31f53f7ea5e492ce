"""test_secrets_proxy.py — the shim's secrets proxy (src/shim/secrets.c + secrets_http.c) on
its own, no VM: tests/unit/secrets_proxy.c serves the real proxy on a unix socket with the
box's network policy replaced by "127.0.0.1 only"; the peers are HTTP and HTTPS servers on
127.0.0.1 that record what they received (bodies de-chunked). The guest's side is this test,
speaking to the socket as slirp's forward would. Secrets: API_KEY may go to `localhost`,
OTHER to `127.0.0.1` (two names for one server, so a lie about the destination shows)."""
import http.server
import os
import pathlib
import secrets as pysecrets
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from boxlite_paths import BUILD  # noqa: E402

PROXY = BUILD / "tests" / "unit" / "secrets_proxy"
VALUE = "s3cr3t-" + pysecrets.token_hex(16)
OTHER = "other-" + pysecrets.token_hex(8)
PH = "<BOXLITE_SECRET:API_KEY>"
PH_O = "<BOXLITE_SECRET:OTHER>"


class Seen(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked requests, Expect: 100-continue
    log = []

    def do_POST(self):
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Seen.log.append({"path": self.path, "headers": dict(self.headers), "te": te,
                         "len": len(body), "body": bytes(body)})
        out = b"ok %d\n" % len(body)  # never echoes what it got
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_PUT = do_POST

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("secrets-proxy-pki")

    def run(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=d, timeout=60)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-days", "2", "-subj", "/CN=boxlite test CA", "-keyout", "ca.key",
        "-out", "ca.crt", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=keyCertSign")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=localhost", "-keyout", "srv.key", "-out", "srv.csr")
    (d / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "srv.crt")
    return d


@pytest.fixture(scope="module")
def servers(pki):
    """An HTTPS and an HTTP server on 127.0.0.1 (ephemeral ports)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki / "srv.crt", pki / "srv.key")
    tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Seen)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Seen)
    for s in (tls, plain):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield {"https": tls.server_address[1], "http": plain.server_address[1]}
    for s in (tls, plain):
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, pki):
    if not PROXY.exists():
        pytest.fail(f"{PROXY} is missing: run `ninja -C build`")
    d = tmp_path_factory.mktemp("secrets-proxy-box")
    (d / "secrets").write_text(f"API_KEY\t{VALUE}\t{PH}\tlocalhost\n"
                               f"OTHER\t{OTHER}\t{PH_O}\t127.0.0.1\n")
    os.chmod(d / "secrets", 0o600)
    log = open(d / "proxy.log", "wb")
    p = subprocess.Popen([str(PROXY), str(d)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=log, env=dict(os.environ,
                                              BOXLITE_SECRETS_UPSTREAM_CA=str(pki / "ca.crt")))
    assert p.stdout.readline() == b"ready\n", (d / "proxy.log").read_text()
    yield {"dir": d, "pid": p.pid, "sock": str(d / "secrets.sock")}
    p.stdin.close()
    assert p.wait(timeout=30) == 0
    log.close()


def connect(proxy, target, alpn=("http/1.1",)):
    """A connection through the proxy to target (CONNECT): TLS trusting the box's CA."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(proxy["sock"])
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        c = s.recv(1)
        assert c, head
        head += c
    assert head.startswith(b"HTTP/1.1 200"), head
    ctx = ssl.create_default_context(cafile=str(proxy["dir"] / "secrets-ca.crt"))
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx.wrap_socket(s, server_hostname=target.rsplit(":", 1)[0])


def response(s):
    """One response (Content-Length framed): status line and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        c = s.recv(65536)
        assert c, data
        data += c
    head, body = data.split(b"\r\n\r\n", 1)
    n = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
             if ln.lower().startswith(b"content-length:")][0])
    while len(body) < n:
        body += s.recv(65536)
    return head.split(b"\r\n")[0].decode(), body


def chunks(data, sizes):
    """data as a chunked body, cut at the given sizes (the rest in one chunk)."""
    out, i = b"", 0
    for n in list(sizes) + [len(data)]:
        part = data[i:i + n]
        if part:
            out += b"%x\r\n%s\r\n" % (len(part), part)
        i += n
    return out + b"0\r\n\r\n"


def test_chunked_body_is_substituted_across_chunks(proxy, servers):
    """A placeholder cut in three by the chunking gets the value (the server gets it
    chunked); the same body to the other name of the server keeps API_KEY's placeholder."""
    Seen.log.clear()
    body = f'{{"k": "{PH}", "o": "{PH_O}"}}'.encode()
    cut = body.index(b"<BOXLITE") + 3
    for target, want in ((f"localhost:{servers['https']}", f'{{"k": "{VALUE}", "o": "{PH_O}"}}'),
                         (f"127.0.0.1:{servers['https']}", f'{{"k": "{PH}", "o": "{OTHER}"}}')):
        s = connect(proxy, target)
        s.sendall(b"POST /c HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  chunks(body, [cut, 5]))
        assert response(s)[0] == "HTTP/1.1 200 OK"
        s.close()
        got = Seen.log[-1]
        assert got["te"] == "chunked" and got["body"] == want.encode(), got


def test_large_body_streams_with_bounded_memory(proxy, servers):
    """A 64 MiB Content-Length body with placeholders throughout, some across the proxy's
    16 KiB reads: the server gets it substituted (chunked, as its length changed), and the
    proxy's peak memory stays far below the body's size."""
    Seen.log.clear()
    piece = (b"x" * 16370 + PH.encode())  # a placeholder across every 16 KiB boundary
    reps = (64 << 20) // len(piece)
    s = connect(proxy, f"localhost:{servers['https']}")
    s.sendall(b"PUT /big HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
              % (len(piece) * reps))
    for _ in range(reps):
        s.sendall(piece)
    status, body = response(s)
    s.close()
    want = len(piece.replace(PH.encode(), VALUE.encode())) * reps
    assert status == "HTTP/1.1 200 OK" and body == b"ok %d\n" % want, (status, body)
    got = Seen.log[-1]
    assert got["te"] == "chunked" and "Content-Length" not in got["headers"], got["headers"]
    assert got["body"] == piece.replace(PH.encode(), VALUE.encode()) * reps
    hwm = [ln for ln in open(f"/proc/{proxy['pid']}/status") if ln.startswith("VmHWM")][0]
    print("proxy peak RSS:", hwm.strip())
    assert int(hwm.split()[1]) < 48 * 1024, hwm  # kB: the body was 64 MiB


def test_expect_100_continue(proxy, servers):
    """The client sends its head, waits for the server's 100 Continue (relayed), then its
    body: the body is substituted and the server gets it chunked."""
    Seen.log.clear()
    body = f"token={PH}".encode()
    s = connect(proxy, f"localhost:{servers['https']}")
    s.sendall(b"POST /e HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body))
    s.settimeout(20)
    first = s.recv(100)
    assert first.startswith(b"HTTP/1.1 100"), first
    s.sendall(body)
    assert response(s)[0] == "HTTP/1.1 200 OK"
    s.close()
    assert Seen.log[-1]["body"] == f"token={VALUE}".encode(), Seen.log[-1]


def test_host_header_cannot_redirect_a_secret(proxy, servers):
    """Attack: the destination decides, never Host: — CONNECT 127.0.0.1 (OTHER's host) with
    Host: localhost, and a plain proxy request to http://127.0.0.1 with Host: localhost, keep
    API_KEY's placeholder; SNI naming localhost over a CONNECT to 127.0.0.1 gets a
    certificate for 127.0.0.1 only (the client's check fails)."""
    Seen.log.clear()
    s = connect(proxy, f"127.0.0.1:{servers['https']}")
    s.sendall(f"GET /h?k={PH} HTTP/1.1\r\nHost: localhost:{servers['https']}\r\n"
              f"Authorization: Bearer {PH}\r\n\r\n".encode())
    assert response(s)[0] == "HTTP/1.1 200 OK"
    s.close()
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(30)
    u.connect(proxy["sock"])
    u.sendall(f"GET http://127.0.0.1:{servers['http']}/p?k={PH} HTTP/1.1\r\n"
              f"Host: localhost:{servers['http']}\r\nX-K: {PH}\r\n\r\n".encode())
    assert response(u)[0] == "HTTP/1.1 200 OK"
    u.close()
    for got in Seen.log:
        assert VALUE not in repr(got) and PH in got["path"], got
    raw = socket.socket(socket.AF_UNIX)
    raw.settimeout(30)
    raw.connect(proxy["sock"])
    target = f"127.0.0.1:{servers['https']}"
    raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    assert raw.recv(200).startswith(b"HTTP/1.1 200")
    ctx = ssl.create_default_context(cafile=str(proxy["dir"] / "secrets-ca.crt"))
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx.wrap_socket(raw, server_hostname="localhost")
    raw.close()


def test_placeholder_to_a_host_no_secret_names_stays(proxy, servers, pki):
    """Attack: a CONNECT to a destination no secret may go to is a plain tunnel (the guest
    sees the real server's certificate) and the placeholder arrives as it was sent. Here
    `localhost` is no destination of OTHER's and 127.0.0.1 none of API_KEY's."""
    Seen.log.clear()
    s = connect(proxy, f"localhost:{servers['https']}")
    s.sendall(f"GET /o?k={PH_O} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert response(s)[0] == "HTTP/1.1 200 OK"
    s.close()
    assert Seen.log[-1]["path"] == f"/o?k={PH_O}", Seen.log


def test_huge_head_is_refused_and_the_proxy_goes_on(proxy, servers):
    """Attack: a 1 MiB header is refused (502, the connection closed) without the proxy's
    memory growing with it; the next connection is served."""
    s = connect(proxy, f"localhost:{servers['https']}")
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * (1 << 20) +
                  b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
        pass
    status = s.recv(100)
    assert status.startswith(b"HTTP/1.1 502") or status == b"", status
    s.close()
    s = connect(proxy, f"localhost:{servers['https']}")
    s.sendall(b"GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert response(s)[0] == "HTTP/1.1 200 OK"
    s.close()


def test_alpn_offers_only_http11(proxy, servers):
    """HTTP/2 is never negotiated on the intercepted TLS: a client offering h2 and
    http/1.1 gets http/1.1, one offering h2 alone gets no ALPN (and speaks HTTP/1.1)."""
    s = connect(proxy, f"localhost:{servers['https']}", alpn=("h2", "http/1.1"))
    assert s.selected_alpn_protocol() == "http/1.1"
    s.close()
    s = connect(proxy, f"localhost:{servers['https']}", alpn=("h2",))
    assert s.selected_alpn_protocol() is None
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert response(s)[0] == "HTTP/1.1 200 OK"
    s.close()


def test_value_is_not_in_the_proxys_files_or_log(proxy):
    """After all the above: the value is only in the secrets file, not in the CA files, the
    proxy's log or anything else in its directory."""
    for f in pathlib.Path(proxy["dir"]).iterdir():
        if f.is_file() and f.name != "secrets":
            assert VALUE.encode() not in f.read_bytes(), f
