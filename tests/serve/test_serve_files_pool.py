"""test_serve_files_pool.py — file transfers run on a fixed pool (src/serve/files.c: 4
workers, 16 waiting) fed only with complete bodies (each spooled first): 20 uploads held open
mid-body cost the server one thread per HTTP connection (libmicrohttpd's) plus the pool, not
more per transfer, and hold no worker: a 21st completes meanwhile; then all 20 complete and
their files read back exact. (Slow and hostile clients: test_serve_slow_clients.py.)"""
import http.client
import io
import tarfile
import time

import pytest

from serve_helpers import running_box, tar_of, threads

N = 20          # XFER_WORKERS + XFER_QUEUE: once, this many held the whole pool
POOL = 4        # XFER_WORKERS
SIZE = 256 << 10
BOUND_S = 120


@pytest.fixture(scope="module")
def box(api):
    yield from running_box(api, "serve-files-pool")


def payload(i):
    return bytes((j * 7 + i * 13 + j // 251) & 255 for j in range(SIZE))


def test_twenty_held_uploads_bounded_threads_and_the_next_served(api, server, box):
    pid = server.proc.pid
    base = threads(pid)
    st, _, b = api.call("PUT", f"/boxes/{box}/files?path=/tmp", tar_of("pool", None),
                        headers={"Content-Type": "application/x-tar"}, timeout=BOUND_S)
    assert st == 204, b
    bodies = [tar_of(f"f{i}.bin", payload(i)) for i in range(N)]
    conns = []
    for i, body in enumerate(bodies):  # each sends its head and 16 KiB, then waits
        c = http.client.HTTPConnection("127.0.0.1", api.port, timeout=BOUND_S)
        c.putrequest("PUT", f"{api.base}/boxes/{box}/files?path=/tmp/pool")
        for k, v in api.headers({"Content-Type": "application/x-tar",
                                 "Content-Length": str(len(body))}).items():
            c.putheader(k, v)
        c.endheaders()
        c.send(body[:16384])
        conns.append(c)
    deadline = time.monotonic() + BOUND_S
    while threads(pid) < base + N and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # every request has reached its begin: 20 spooling, no copy queued
    most = threads(pid)
    # libmicrohttpd's thread per connection, the pool, the library's reader thread of each
    # running copy's own box handle (src/lib/box/conn.c), 2 to spare; not threads per copy
    assert most - base <= N + 2 * POOL + 2, (base, most)
    st, _, b = api.call("PUT", f"/boxes/{box}/files?path=/tmp/pool", tar_of("x", b"x"),
                        headers={"Content-Type": "application/x-tar"}, timeout=BOUND_S)
    assert st == 204, (st, b)  # the held bodies hold no worker
    for c, body in zip(conns, bodies):
        c.send(body[16384:])
    for c in conns:
        r = c.getresponse()
        assert r.status == 204, (r.status, r.read())
        r.read()
        c.close()
    for i in range(N):
        st, _, data = api.call("GET", f"/boxes/{box}/files?path=/tmp/pool/f{i}.bin",
                               timeout=BOUND_S)
        assert st == 200
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            got = t.extractfile(t.getmembers()[0]).read()
        assert got == payload(i), i
