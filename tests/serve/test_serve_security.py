"""test_serve_security.py — hostile clients of `boxlite serve` (no VM needed): missing and
wrong keys, hashed keys and SIGHUP revocation, oversized bodies, slowloris, a non-loopback
listen, host paths through volumes, the prefix, and a pass of malformed requests."""
import hashlib
import json
import random
import signal
import socket
import subprocess
import time

import pytest

from serve_helpers import KEY, Api, Server, free_port, make_cert, serve_env
from boxlite_paths import BOXLITE


@pytest.fixture()
def make(box_env, tmp_path):
    made = []

    def start(**kw):
        s = Server(serve_env(box_env), tmp_path, **kw)
        made.append(s)
        return s
    yield start
    for s in made:
        s.stop()


def test_missing_or_wrong_key_is_401(api):
    assert api.call("GET", "/me", root=True)[0] == 200
    for key in (None, "wrong", KEY + "x", KEY[:-1], ""):
        st, _, b = Api(api.port, key=key).call("GET", "/boxes")
        assert st == 401, key
        assert b["error"]["code"] == "unauthenticated" and b["error"]["type"] == "AuthError"
    st, _, b = Api(api.port, key=None).call("GET", "/config", root=True)
    assert st == 200 and b["capabilities"]["snapshots_enabled"] is True
    st, _, me = api.call("GET", "/me", root=True)
    assert me["principal_type"] == "service_account" and me["path_prefix"] is None


def test_hashed_keys_and_sighup_revocation(make):
    s = make(keys=("first-key", "second-key"), hashed=True)
    assert "first-key" not in s.keyfile.read_text()
    assert Api(s.port, key="first-key").call("GET", "/boxes")[0] == 200
    assert Api(s.port, key="second-key").call("GET", "/boxes")[0] == 200
    s.keyfile.write_text("sha256:" + hashlib.sha256(b"second-key").hexdigest() + "\n")
    s.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if Api(s.port, key="first-key").call("GET", "/boxes")[0] == 401:
            break
        time.sleep(0.1)
    assert Api(s.port, key="first-key").call("GET", "/boxes")[0] == 401
    assert Api(s.port, key="second-key").call("GET", "/boxes")[0] == 200


def test_oversized_bodies(api):
    # a declared length over the limit is answered before the body is read
    s = socket.create_connection(("127.0.0.1", api.port), timeout=20)
    s.sendall(b"POST /v1/boxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
              b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % (2 << 20))
    head = s.recv(4096)
    s.close()
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b'"code":"invalid_argument"' in head
    # chunked, no length: the connection is dropped once the limit passes.
    # Send a little over the 1 MiB limit, then nothing more: the server must
    # end the connection by itself. A server that kept reading would wait for
    # the rest of the body and the recv below would time out. (Counting how
    # much the client managed to send measures the kernel's socket buffers —
    # up to tcp_rmem's 32 MiB here — not the server.)
    s = socket.create_connection(("127.0.0.1", api.port), timeout=20)
    s.sendall(b"POST /v1/boxes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
              b"\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    ended = False
    try:
        for _ in range(((1 << 20) // 65536) + 2):
            s.sendall(chunk)
        s.settimeout(15)
        reply = b""
        while len(reply) < 65536:
            got = s.recv(4096)
            if got == b"":
                ended = True
                break
            reply += got
    except (ConnectionResetError, BrokenPipeError):
        ended = True
    except socket.timeout:
        ended = False
    s.close()
    assert ended, "the server kept the connection open after the body passed its limit"
    assert api.call("GET", "/boxes")[0] == 200


def test_slowloris_is_cut_at_the_header_deadline(make):
    s = make(extra=("--header-timeout", "2"))
    slow = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    slow.sendall(b"GET /v1/config HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    closed = False
    for i in range(20):  # one header byte a second: each is activity, the deadline is not
        try:
            slow.sendall(b"X")
            slow.settimeout(1)
            if slow.recv(100) == b"":
                closed = True
                break
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
    elapsed = time.monotonic() - t0
    slow.close()
    assert closed and elapsed < 6, elapsed
    assert Api(s.port).call("GET", "/config", root=True)[0] == 200


def test_non_loopback_listen_is_refused(box_env, tmp_path):
    keys = tmp_path / "k"
    keys.write_text("k\n")
    for extra in ([], ["--api-key-file", str(keys)]):
        p = subprocess.run([str(BOXLITE), "serve", "--listen", f"0.0.0.0:{free_port()}", *extra],
                           env=serve_env(box_env), capture_output=True, timeout=30)
        assert p.returncode != 0 and b"refusing to listen" in p.stderr, p.stderr


def test_volumes_cannot_name_host_paths(make, tmp_path):
    s = make()
    api = Api(s.port)
    st, _, b = api.call("POST", "/boxes", {"volumes": [{"host_path": "/etc",
                                                        "guest_path": "/mnt"}]})
    assert st == 400 and b["error"]["code"] == "unsupported"
    root = tmp_path / "vols"
    (root / "ok").mkdir(parents=True)
    s2 = make(extra=("--volume-root", str(root)))
    api2 = Api(s2.port)
    for hp in ("/etc", str(root / ".." / ".."), str(root / "missing")):
        st, _, b = api2.call("POST", "/boxes", {"volumes": [{"host_path": hp,
                                                             "guest_path": "/mnt"}]})
        assert st == 400 and b["error"]["code"] == "invalid_argument", hp
    (root / "ok" / "escape").symlink_to("/etc")
    st, _, b = api2.call("POST", "/boxes", {"volumes": [{"host_path": str(root / "ok" / "escape"),
                                                         "guest_path": "/mnt"}]})
    assert st == 400, b
    st, _, b = api.call("POST", "/boxes", {"rootfs_path": "/"})
    assert st == 400 and b["error"]["code"] == "unsupported"
    # volumes of another type than an array were once ignored (the box made without them)
    for bad in ("/etc", {"host_path": "/etc"}, 1):
        st, _, b = api2.call("POST", "/boxes", {"volumes": bad})
        assert st == 400 and b["error"]["message"] == "volumes must be an array", bad


def test_decoders_refuse_before_any_lookup(api):
    """Found with fuzz_serve_decode (src/serve/decode.c): a resize with null cols and rows
    once reached the library as 0x0; it is refused before the box is looked up."""
    for body in ({"cols": None, "rows": None}, {"cols": 0, "rows": 5}, {"rows": 5}):
        st, _, b = api.call("POST", "/boxes/nobox/executions/noexec/resize", body)
        assert st == 400 and b["error"]["code"] == "invalid_argument", (body, b)
    for body in ({"signal": None}, {"signal": 9}, {"signal": 4294967311}):
        st, _, b = api.call("POST", "/boxes/nobox/executions/noexec/signal", body)
        assert st == 400 and b["error"]["code"] == "invalid_argument", (body, b)
    st, _, b = api.call("POST", "/boxes/nobox/network/tunnel?port=65536")
    assert st == 400 and "port" in b["error"]["message"]


def test_prefix_routes(make):
    s = make(prefix="acme")
    assert Api(s.port).call("GET", "/boxes")[0] == 404
    st, _, b = Api(s.port, prefix="acme").call("GET", "/boxes")
    assert st == 200 and "boxes" in b
    assert Api(s.port, prefix="other").call("GET", "/boxes")[0] == 404
    assert Api(s.port, prefix="acme").call("GET", "/me", root=True)[2]["path_prefix"] == "acme"


METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "G\x00T", "GET GET"]
PATHS = ["/v1/boxes", "/v1/boxes/%s", "/v1/boxes/%s/exec", "/v1/boxes/%s/executions/%s/signal",
         "/v1/boxes/%s/files?path=%s", "/v1/images/%s", "/v1/boxes?pageSize=%s",
         "/v1/boxes?pageToken=%s", "/v1/images/pull", "/v1/boxes/%s/snapshots", "/%s", "%s"]


def junk(rng):
    return rng.choice(["", "..", "../../etc/passwd", "%00", "a" * 5000, "\u00e9", "-1",
                       "99999999999999999999", "o-5", "o", "%2F", str(rng.random())])


def test_malformed_requests_get_4xx_never_a_crash(api):
    rng = random.Random(16)
    bodies = [b"", b"{", b"[]", b"null", b"\x00\xff", b'{"command": 5}', b'{"signal": "x"}',
              b'{"name": {}}', b'{"reference": 1}', b'{"cols": -1, "rows": 0}',
              b'{"env": {"A=B": "x"}, "command": ""}', b'{"a":1,"a":2}', b"9" * 400]
    statuses = {}
    for i in range(1000):
        path = rng.choice(PATHS)
        path = path % tuple(junk(rng) for _ in range(path.count("%s")))
        method = rng.choice(METHODS)
        body = rng.choice(bodies)
        s = socket.create_connection(("127.0.0.1", api.port), timeout=20)
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
        if rng.random() < 0.1:
            head += "Content-Length: -5\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        s.sendall(head.encode("utf-8", "surrogateescape") + body)
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        line = data.split(b"\r\n", 1)[0]
        code = int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else 0
        statuses[code] = statuses.get(code, 0) + 1
        ok = 400 <= code < 500 or code == 0 or (code == 200 and method == "GET")
        assert ok, (method, path, body, data[:300])
    assert api.call("GET", "/boxes")[0] == 200, statuses


def test_idempotency_key_replays_the_first_response(api):
    k = {"Idempotency-Key": "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"}
    st, h, first = api.call("POST", "/boxes", {"name": "idem-box"}, headers=k)
    assert st == 201, first
    st, h2, again = api.call("POST", "/boxes", {"name": "idem-box"}, headers=k)
    assert st == 201 and again == first and h2.get("idempotent-replayed") == "true"
    assert h2["location"] == h["location"]
    st, _, b = api.call("POST", "/boxes", {"name": "idem-other"}, headers=k)
    assert st == 422, b  # same key, another payload
    st, _, b = api.call("POST", "/boxes", {"name": "idem-box"},
                        headers={"Idempotency-Key": "another"})
    assert st == 409 and b["error"]["code"] == "already_exists"
    d = {"Idempotency-Key": "delete-1"}
    assert api.call("DELETE", "/boxes/idem-box", headers=d)[0] == 204
    assert api.call("DELETE", "/boxes/idem-box", headers=d)[0] == 204  # replayed, not re-run
    assert api.call("DELETE", "/boxes/idem-box")[0] == 404
    assert api.call("GET", "/config", root=True)[2]["capabilities"][
        "idempotency_key_lifetime"] == "PT24H"


def test_tls(make, tmp_path):
    import http.client
    import ssl
    cert, key = make_cert(tmp_path)
    s = make(extra=("--tls-cert", str(cert), "--tls-key", str(key)))
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    c = http.client.HTTPSConnection("127.0.0.1", s.port, context=ctx, timeout=20)
    c.request("GET", "/v1/boxes", headers={"Authorization": f"Bearer {KEY}"})
    r = c.getresponse()
    assert r.status == 200 and b"boxes" in r.read()
    c.close()
    plain = Api(s.port)
    with pytest.raises(Exception):
        plain.call("GET", "/config", root=True, timeout=10)


def test_pagination_tokens(api):
    for n in ("page-a", "page-b", "page-c"):
        assert api.call("POST", "/boxes", {"name": n})[0] == 201
    seen, token = [], None
    for _ in range(20):
        st, _, b = api.call("GET", "/boxes?pageSize=2" + (f"&pageToken={token}" if token else ""))
        assert st == 200 and len(b["boxes"]) <= 2
        seen += [x["name"] for x in b["boxes"]]
        token = b.get("next_page_token")
        if not token:
            break
    assert {"page-a", "page-b", "page-c"} <= set(seen) and len(seen) == len(set(seen))
    for bad in ("pageSize=0", "pageSize=1001", "pageSize=x", "pageToken=zzz", "pageToken=o-1"):
        st, _, b = api.call("GET", "/boxes?" + bad)
        assert st == 400 and b["error"]["code"] == "invalid_argument", bad
    for n in ("page-a", "page-b", "page-c"):
        assert api.call("DELETE", f"/boxes/{n}")[0] == 204


def test_router_fuzz_pass(tmp_path):
    """libFuzzer over the router (tests/serve/fuzz_router.c) for a bounded number of runs."""
    import shutil
    from boxlite_paths import ROOT
    clang = shutil.which("clang-14") or shutil.which("clang")
    if clang is None:
        pytest.skip("clang is not installed")
    exe = tmp_path / "fuzz_router"
    flags = subprocess.run(["pkg-config", "--cflags", "jansson", "libmicrohttpd"],
                           capture_output=True, text=True, check=True).stdout.split()
    subprocess.run([clang, "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
                    "-fno-sanitize-recover=all", "-D_GNU_SOURCE", f"-I{ROOT}/include",
                    f"-I{ROOT}/src/serve", *flags, str(ROOT / "tests/serve/fuzz_router.c"),
                    "-o", str(exe)], check=True, timeout=300)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate([b"GET\n/boxes", b"POST\n/boxes/abc/executions/e1/signal",
                              b"GET\n/boxes/a/snapshots/s/restore", b"PUT\n/boxes//files"]):
        (corpus / f"s{i}").write_bytes(seed)
    p = subprocess.run([str(exe), "-runs=200000", "-max_len=512",
                        f"-artifact_prefix={tmp_path}/", str(corpus)],
                       capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]


def test_ipv6_loopback_and_access_log(box_env, tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 here")
    port = free_port()
    log = tmp_path / "v6.log"
    with open(log, "wb") as f:
        p = subprocess.Popen([str(BOXLITE), "serve", "--listen", f"[::1]:{port}"],
                             env=serve_env(box_env), stdout=f, stderr=f)
    try:
        import http.client
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("::1", port, timeout=10)
                c.request("GET", "/v1/config")
                r = c.getresponse()
                break
            except OSError:
                time.sleep(0.1)
        assert r.status == 200
        rid = r.getheader("X-Request-Id")
        r.read()
        c.close()
        c = http.client.HTTPConnection("::1", port, timeout=10)
        c.request("GET", '/v1/x%22%2C%22status%22%3A200%7D%0A%7B%22forged%22%3A1')
        c.getresponse().read()
        c.close()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    assert not any("forged" in x for x in lines), lines
    assert any(x["path"].startswith('/x","status":200}') for x in lines), lines
    assert any(x["request_id"] == rid and x["status"] == 200 and x["path"] == "/config"
               for x in lines), lines


def test_per_key_box_limit(make):
    s = make(keys=(KEY, "other-key"), extra=("--max-boxes-per-key", "2"))
    one, other = Api(s.port), Api(s.port, key="other-key")
    assert one.call("POST", "/boxes", {"name": "quota-1"})[0] == 201
    assert one.call("POST", "/boxes", {"name": "quota-2"})[0] == 201
    st, _, b = one.call("POST", "/boxes", {"name": "quota-3"})
    assert st == 429 and b["error"]["code"] == "resource_exhausted", b
    st, _, b = one.call("POST", "/boxes/quota-1/clone", {"name": "quota-c"})
    assert st == 429, b
    assert other.call("POST", "/boxes", {"name": "quota-o"})[0] == 201
    assert one.call("DELETE", "/boxes/quota-1")[0] == 204
    assert one.call("POST", "/boxes", {"name": "quota-3"})[0] == 201
    for n in ("quota-2", "quota-3", "quota-o"):
        assert one.call("DELETE", f"/boxes/{n}")[0] == 204


def test_idempotency_and_ownership_survive_a_restart(make):
    """Keys' results and who made which box live in $BOXLITE_HOME/serve.db."""
    extra = ("--max-boxes-per-key", "1")
    k = {"Idempotency-Key": "restart-7f3a9c"}
    s = make(keys=(KEY, "other-key"), extra=extra)
    st, h, first = Api(s.port).call("POST", "/boxes", {"name": "restart-1"}, headers=k)
    assert st == 201, first
    s.stop()
    s = make(keys=(KEY, "other-key"), extra=extra)
    one, other = Api(s.port), Api(s.port, key="other-key")
    st, h2, again = one.call("POST", "/boxes", {"name": "restart-1"}, headers=k)
    assert st == 201 and again == first and h2.get("idempotent-replayed") == "true", again
    assert h2["location"] == h["location"]
    st, _, b = one.call("POST", "/boxes", {"name": "restart-1b"}, headers=k)
    assert st == 422, b  # the same key with another body, still known
    st, _, b = one.call("POST", "/boxes", {"name": "restart-2"})
    assert st == 429 and b["error"]["code"] == "resource_exhausted", b  # restart-1 is still KEY's
    assert other.call("POST", "/boxes", {"name": "restart-o"})[0] == 201
    for n in ("restart-1", "restart-o"):
        assert one.call("DELETE", f"/boxes/{n}")[0] == 204
    assert one.call("POST", "/boxes", {"name": "restart-2"})[0] == 201
    assert one.call("DELETE", "/boxes/restart-2")[0] == 204
