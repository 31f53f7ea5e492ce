"""test_serve_slow_clients.py — a slow or hostile file-transfer client costs only its own
connection and a bounded spool, never one of the 4 transfer workers (src/serve/files.c):
six uploaders that trickle their bodies and six downloaders that never read leave a 4 MiB
round trip to the same box fast and exact; an uploader that hangs up mid-body leaves no spool
file, no reservation and nothing in the box; the spool's bounds (--max-upload per transfer,
--max-spool server-wide) refuse with 413 / 503 resource_exhausted and give their bytes back."""
import hashlib
import http.client
import io
import json
import os
import socket
import tarfile
import threading
import time

import pytest

from serve_helpers import Api, Server, running_box, serve_env, tar_of

MIB = 1 << 20
SIZE = 4 * MIB
MAX_UPLOAD = 64 * MIB
MAX_SPOOL = 96 * MIB
BOUND_S = 90  # the round trip under TCG on a busy 2-core machine: seconds normally


@pytest.fixture(scope="module")
def server(box_env, tmp_path_factory):
    # an idle timeout past the test's length: on a worker-per-client server the never-reading
    # downloaders would hold their workers for all of it
    s = Server(serve_env(box_env), tmp_path_factory.mktemp("serve-slow"),
               extra=["--max-upload", str(MAX_UPLOAD), "--max-spool", str(MAX_SPOOL),
                      "--idle-timeout", "600"])
    s.spool_dir = os.path.join(box_env["BOXLITE_HOME"], "serve-tmp")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def api(server):
    return Api(server.port)


@pytest.fixture(scope="module")
def box(api):
    for box_id in running_box(api, "serve-slow-clients"):
        st, _, err = api.call("PUT", f"/boxes/{box_id}/files?path=/tmp", tar_of("up", None),
                              headers={"Content-Type": "application/x-tar"}, timeout=BOUND_S)
        assert st == 204, err
        yield box_id


def payload(seed, size=SIZE):
    return hashlib.shake_256(b"slow-%d" % seed).digest(size)


def untar_one(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return t.extractfile(t.getmembers()[0]).read()


def put_head(api, box, path, length):
    """An upload's request line and headers, its body still to come."""
    c = http.client.HTTPConnection("127.0.0.1", api.port, timeout=BOUND_S)
    c.putrequest("PUT", f"{api.base}/boxes/{box}/files?path={path}")
    for k, v in api.headers({"Content-Type": "application/x-tar",
                             "Content-Length": str(length)}).items():
        c.putheader(k, v)
    c.endheaders()
    return c


def never_reader(api, box, path):
    """A download whose client never reads a byte (a tiny receive window)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(BOUND_S)
    s.connect(("127.0.0.1", api.port))
    s.sendall((f"GET {api.base}/boxes/{box}/files?path={path} HTTP/1.1\r\n"
               f"Host: 127.0.0.1\r\nAuthorization: Bearer {api.key}\r\n\r\n").encode())
    return s


def spool_fds(server):
    """The server's open files in its spool directory (an O_TMPFILE shows as '#N (deleted)')."""
    d = f"/proc/{server.proc.pid}/fd"
    out = []
    for fd in os.listdir(d):
        try:
            target = os.readlink(f"{d}/{fd}")
        except OSError:
            continue
        if target.startswith(server.spool_dir + "/"):
            out.append(target)
    return out


def spool_names(server):
    return [n for n in os.listdir(server.spool_dir) if n.startswith(("spool-", "import-"))]


def wait_until(cond, limit_s=30):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def round_trip(api, box, name, data):
    st, _, err = api.call("PUT", f"/boxes/{box}/files?path=/tmp/up", tar_of(name, data),
                          headers={"Content-Type": "application/x-tar"}, timeout=BOUND_S)
    assert st == 204, err
    st, _, got = api.call("GET", f"/boxes/{box}/files?path=/tmp/up/{name}", timeout=BOUND_S)
    assert st == 200, got
    assert hashlib.sha256(untar_one(got)).hexdigest() == hashlib.sha256(data).hexdigest()


def test_slow_uploaders_and_never_reading_downloaders_hold_no_worker(api, server, box):
    round_trip(api, box, "seed.bin", payload(0))  # what the downloaders will ask for
    stop = threading.Event()
    bodies = [tar_of(f"slow{i}.bin", payload(10 + i)) for i in range(6)]
    uploads = [put_head(api, box, "/tmp/up", len(b)) for b in bodies]

    def trickle(c, body):  # a few bytes a second, never done within the test
        for off in range(0, 512 * 120, 512):
            if stop.wait(1):
                return
            try:
                c.send(body[off:off + 512])
            except OSError:
                return

    threads = [threading.Thread(target=trickle, args=(c, b), daemon=True)
               for c, b in zip(uploads, bodies)]
    for t in threads:
        t.start()
    readers = []
    try:
        readers = [never_reader(api, box, "/tmp/up/seed.bin") for _ in range(6)]
        time.sleep(3)  # every slow request has reached the server
        started = time.monotonic()
        round_trip(api, box, "fast.bin", payload(1))
        took = time.monotonic() - started
        assert took < BOUND_S, took
        print(f"round trip of 2 x 4 MiB beside 12 slow clients: {took:.1f} s")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
        for c in uploads:
            c.close()
        for s in readers:
            s.close()
    # the trickled bodies never ended: nothing of them landed, and their spools are gone
    for i in range(6):
        assert api.call("GET", f"/boxes/{box}/files?path=/tmp/up/slow{i}.bin",
                        timeout=BOUND_S)[0] == 404
    assert wait_until(lambda: not spool_fds(server)), spool_fds(server)


def test_an_uploader_that_hangs_up_leaves_nothing(api, server, box):
    body = tar_of("gone.bin", payload(2, 20 * MIB))
    for _ in range(3):  # each reserves 20 MiB of the spool; 3 x 20 + 60 would pass 96
        c = put_head(api, box, "/tmp/up", len(body))
        c.send(body[:3 * MIB])
        time.sleep(0.5)
        assert spool_fds(server), "the body should be spooling"
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        c.close()  # a reset, mid-body
    assert wait_until(lambda: not spool_fds(server)), spool_fds(server)
    assert spool_names(server) == []
    assert api.call("GET", f"/boxes/{box}/files?path=/tmp/up/gone.bin",
                    timeout=BOUND_S)[0] == 404
    # the reservations came back: one upload may declare nearly the whole spool again
    big = put_head(api, box, "/tmp/up", 60 * MIB)
    big.send(b"\0" * 512)
    time.sleep(1)
    big.sock.settimeout(0.5)
    with pytest.raises(socket.timeout):  # no early refusal: it waits for its body
        big.getresponse()
    big.close()
    assert wait_until(lambda: not spool_fds(server)), spool_fds(server)
    round_trip(api, box, "after.bin", payload(3))


def test_spool_bounds_refuse_and_give_back(api, server, box):
    # per transfer: a declared body over --max-upload is refused before a byte is spooled
    c = put_head(api, box, "/tmp/up", MAX_UPLOAD + 1)
    r = c.getresponse()
    assert r.status == 413, (r.status, r.read())
    c.close()
    # one that does not declare its length is cut off at the bound, spool and all
    c = http.client.HTTPConnection("127.0.0.1", api.port, timeout=BOUND_S)
    c.putrequest("PUT", f"{api.base}/boxes/{box}/files?path=/tmp/up")
    for k, v in api.headers({"Content-Type": "application/x-tar",
                             "Transfer-Encoding": "chunked"}).items():
        c.putheader(k, v)
    c.endheaders()
    chunk = b"\0" * MIB
    status = None
    try:
        for _ in range(MAX_UPLOAD // MIB + 8):
            c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        c.send(b"0\r\n\r\n")
        status = c.getresponse().status  # any reply to the endless body is a failure
    except OSError:
        pass
    assert status is None, status
    c.close()
    assert wait_until(lambda: not spool_fds(server)), spool_fds(server)
    # server-wide: two held uploads take 60 + 33 of the 96 MiB
    held = [put_head(api, box, "/tmp/up", 60 * MIB), put_head(api, box, "/tmp/up", 33 * MIB)]
    for h in held:
        h.send(b"\0" * 512)
    time.sleep(1)
    c = put_head(api, box, "/tmp/up", len(tar_of("x.bin", payload(4))))
    r = c.getresponse()  # refused at its headers, before it sends a byte
    b = json.loads(r.read())
    assert r.status == 503 and b["error"]["code"] == "resource_exhausted", (r.status, b)
    c.close()
    st, _, b = api.call("GET", f"/boxes/{box}/files?path=/tmp/up/seed.bin", timeout=BOUND_S)
    assert st == 503 and b["error"]["code"] == "resource_exhausted", (st, b)
    for h in held:
        h.close()
    assert wait_until(lambda: not spool_fds(server)), spool_fds(server)
    assert api.call("GET", f"/boxes/{box}/files?path=/tmp/up/x.bin", timeout=BOUND_S)[0] == 404
    round_trip(api, box, "x.bin", payload(4))  # the bytes came back
