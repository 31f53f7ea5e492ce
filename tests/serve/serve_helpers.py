"""serve_helpers.py — `boxlite serve` under test: start it on a free 127.0.0.1 port with a key
file, an HTTP client that speaks its JSON, and a WebSocket attach helper (python3-websocket)."""
import hashlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import time

from boxlite_paths import BOXLITE

KEY = "blk_test_serve_key_0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `boxlite serve` process; stop() ends it with SIGTERM (bounded)."""

    def __init__(self, env, workdir, prefix=None, extra=(), keys=(KEY,), hashed=False):
        self.port = free_port()
        self.prefix = prefix
        self.keyfile = workdir / f"keys-{self.port}"
        lines = [("sha256:" + hashlib.sha256(k.encode()).hexdigest()) if hashed else k
                 for k in keys]
        self.keyfile.write_text("# keys\n" + "\n".join(lines) + "\n")
        args = [str(BOXLITE), "serve", "--listen", f"127.0.0.1:{self.port}"]
        if keys:
            args += ["--api-key-file", str(self.keyfile)]
        if prefix:
            args += ["--prefix", prefix]
        args += list(extra)
        self.log = open(workdir / f"serve-{self.port}.log", "wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"boxlite serve exited {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("boxlite serve did not listen")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Api:
    """JSON over HTTP to one server (or a proxy in front of it)."""

    def __init__(self, port, base="/v1", key=KEY, prefix=None):
        self.port = port
        self.root = base
        self.base = base + (f"/{prefix}" if prefix else "")
        self.key = key

    def headers(self, extra=None):
        h = {}
        if self.key is not None:
            h["Authorization"] = f"Bearer {self.key}"
        h.update(extra or {})
        return h

    def raw(self, method, url, body=None, headers=None, timeout=600):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, url, body=body, headers=self.headers(headers))
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def call(self, method, path, body=None, root=False, headers=None, timeout=600):
        h = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        status, hdrs, data = self.raw(method, (self.root if root else self.base) + path, body, h,
                                      timeout)
        ctype = hdrs.get("content-type", "")
        return status, hdrs, (json.loads(data) if data and "json" in ctype else data)

    def ws_url(self, path):
        return f"ws://127.0.0.1:{self.port}{self.base}{path}"


def attach(api, box, eid, timeout=60):
    import websocket  # python3-websocket
    return websocket.create_connection(api.ws_url(f"/boxes/{box}/executions/{eid}/attach"),
                                       timeout=timeout,
                                       header=[f"Authorization: Bearer {api.key}"])


def read_until_exit(ws, limit_s=120):
    """Frames until the exit frame: (stdout bytes, stderr bytes, exit code, errors)."""
    out, err, errors = b"", b"", []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        op, data = ws.recv_data()
        if op == 2 and data[:1] == b"\x01":
            out += data[1:]
        elif op == 2 and data[:1] == b"\x02":
            err += data[1:]
        elif op == 1:
            msg = json.loads(data)
            if msg["type"] == "exit":
                return out, err, msg["exit_code"], errors
            errors.append(msg)
        elif op == 8:
            break
    raise AssertionError(f"no exit frame: out={out!r} err={err!r} errors={errors}")


def serve_env(env):
    e = dict(env)
    e.setdefault("BOXLITE_ACCEL", os.environ.get("BOXLITE_TEST_ACCEL", "tcg"))
    return e


def threads(pid):
    """How many threads process pid has."""
    return len(os.listdir(f"/proc/{pid}/task"))


def tar_of(name, data, mode=None):
    """A tar holding one entry: a file of data, or a directory when data is None."""
    return tar_of_files({name: data}, mode)


def tar_of_files(files, mode=None):
    """A tar of {name: bytes, or None for a directory}, in that order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            if data is None:
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            else:
                ti.size = len(data)
                if mode is not None:
                    ti.mode = mode
            t.addfile(ti, io.BytesIO(data or b""))
    return buf.getvalue()


def make_cert(tmp_path):
    """A self-signed certificate and key for 127.0.0.1 (PEM files in tmp_path)."""
    cert, key = tmp_path / "tls-cert.pem", tmp_path / "tls-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def running_box(api, name):
    """Create and start a 256 MiB box named name through api; yields its id, then deletes it
    (for a module fixture: `yield from running_box(api, "x")`)."""
    st, _, b = api.call("POST", "/boxes", {"name": name, "memory_mib": 256})
    assert st == 201, b
    st, _, b2 = api.call("POST", f"/boxes/{b['box_id']}/start")
    assert st == 200 and b2["status"] == "running", b2
    yield b["box_id"]
    api.call("DELETE", f"/boxes/{b['box_id']}?force=true")
