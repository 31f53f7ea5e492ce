"""client.py — the REST runtime, boxes and executions of boxlite.rest (see __init__)."""
import asyncio
import http.client
import io
import json
import os
import tarfile
import threading
import urllib.parse
from typing import Any, Dict, List, Optional

from .._common import BoxInfo, LineSplitter
from ..errors import (AlreadyExistsError, InvalidArgumentError, InvalidStateError,
                      NativeError, NotAvailableError, NotFoundError, StoppedError)

_ERRORS = {
    "invalid_argument": InvalidArgumentError, "not_found": NotFoundError,
    "already_exists": AlreadyExistsError, "invalid_state": InvalidStateError,
    "stopped": StoppedError, "unsupported": NotAvailableError,
}


class ApiKeyCredential:
    """A bearer API key (`Authorization: Bearer <key>`); repr hides it."""

    def __init__(self, api_key: str):
        if not api_key:
            raise ValueError("api_key is required")
        self.api_key = api_key

    def __repr__(self) -> str:
        return "ApiKeyCredential(api_key=***)"


class BoxliteRestOptions:
    """Where the server is: url ("http://127.0.0.1:8100", with or without /v1), credential,
    prefix (the {prefix} slot; None asks GET /v1/me), timeout in seconds per request."""

    def __init__(self, url: str, credential: Optional[ApiKeyCredential] = None,
                 prefix: Optional[str] = None, timeout: float = 600.0):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"url must be http(s)://host[:port], not {url!r}")
        self.url = url
        self.credential = credential
        self.prefix = prefix
        self.timeout = timeout


class _Http:
    """One server: requests with the key, errors raised as boxlite exceptions."""

    def __init__(self, opts: BoxliteRestOptions):
        u = urllib.parse.urlsplit(opts.url)
        self.tls = u.scheme == "https"
        self.host, self.port = u.hostname, u.port or (443 if self.tls else 80)
        self.root = u.path.rstrip("/")
        if not self.root.endswith("/v1"):
            self.root += "/v1"
        self.key = opts.credential.api_key if opts.credential else None
        self.timeout = opts.timeout
        self.base = self.root

    def conn(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.tls else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)

    def headers(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        h = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        h.update(extra or {})
        return h

    def request(self, method: str, path: str, body: Any = None, root: bool = False,
                ctype: Optional[str] = None, sink=None) -> Any:
        """JSON in and out; body may be bytes (with ctype) or a file; sink receives a binary
        response body in chunks instead."""
        data, h = body, {}
        if body is not None and not isinstance(body, (bytes, bytearray)) and \
                not hasattr(body, "read"):
            data, h["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif ctype:
            h["Content-Type"] = ctype
        c = self.conn()
        try:
            c.request(method, (self.root if root else self.base) + path, body=data,
                      headers=self.headers(h))
            r = c.getresponse()
            if r.status >= 400:
                raise _error(r.status, r.read())
            if sink is not None and r.status == 200:
                while True:
                    chunk = r.read(65536)
                    if not chunk:
                        return None
                    sink(chunk)
            raw = r.read()
            return json.loads(raw) if raw and "json" in (r.getheader("Content-Type") or "") \
                else None
        finally:
            c.close()


def _error(status: int, raw: bytes) -> Exception:
    try:
        e = json.loads(raw)["error"]
        cls = _ERRORS.get(e.get("code"), NativeError)
        return cls(e.get("message") or f"HTTP {status}")
    except (ValueError, KeyError, TypeError):
        return NativeError(f"HTTP {status}: {raw[:200]!r}")


def _info(b: Dict[str, Any]) -> BoxInfo:
    return BoxInfo({
        "id": b["box_id"], "name": b.get("name") or "", "state": b["status"],
        "pid": b.get("pid") or 0, "reason": "", "created_at": b["created_at"],
        "image": b["image"], "cpus": b["cpus"], "memory_mib": b["memory_mib"],
        "disk_size_gb": 0, "network_disabled": False, "ports": "", "volumes": "",
        "auto_remove": False, "detach": False, "auto_delete": b.get("auto_delete") or 0})


class RestBoxlite:
    """The runtime behind a Box API server (async, like boxlite.Boxlite)."""

    def __init__(self, options: BoxliteRestOptions):
        self._http = _Http(options)
        self._prefix = options.prefix
        self._closed = False

    async def _call(self, *a, **kw) -> Any:
        if self._closed:
            raise StoppedError("the runtime has been shut down")
        if self._prefix is None:
            me = await asyncio.to_thread(self._http.request, "GET", "/me", None, True)
            self._prefix = me.get("path_prefix") or ""
            if self._prefix:
                self._http.base = f"{self._http.root}/{self._prefix}"
        return await asyncio.to_thread(self._http.request, *a, **kw)

    async def create(self, options=None, name: Optional[str] = None) -> "RestBox":
        body: Dict[str, Any] = {}
        if options is not None:
            body["image"] = options.image or ("alpine:latest" if not options.rootfs_path
                                              else None)
            for k in ("cpus", "memory_mib", "disk_size_gb", "working_dir", "user",
                      "entrypoint", "cmd", "rootfs_path"):
                if getattr(options, k, None) is not None:
                    body[k] = getattr(options, k)
            if options.env:
                body["env"] = dict(options.env)
            if options.detach:
                body["detach"] = True
            if getattr(options, "auto_delete", None) is not None:  # seconds; 0 keeps it
                body["auto_delete"] = options.auto_delete
            body = {k: v for k, v in body.items() if v is not None}
        if name is not None:
            body["name"] = name
        b = await self._call("POST", "/boxes", body)
        return RestBox(self, b)

    async def get(self, id_or_name: str) -> Optional["RestBox"]:
        try:
            return RestBox(self, await self._call("GET", f"/boxes/{_q(id_or_name)}"))
        except NotFoundError:
            return None

    async def get_info(self, id_or_name: str) -> Optional[BoxInfo]:
        box = await self.get(id_or_name)
        return box._info if box else None

    async def list_info(self) -> List[BoxInfo]:
        out, token = [], None
        for _ in range(10000):
            q = "?pageSize=1000" + (f"&pageToken={_q(token)}" if token else "")
            page = await self._call("GET", "/boxes" + q)
            out += [_info(b) for b in page["boxes"]]
            token = page.get("next_page_token")
            if not token:
                break
        return out

    async def get_or_create(self, options=None, name: Optional[str] = None):
        box = await self.get(name) if name else None
        return (box, False) if box else (await self.create(options, name), True)

    async def remove(self, id_or_name: str, force: bool = False) -> None:
        await self._call("DELETE", f"/boxes/{_q(id_or_name)}?force={str(force).lower()}")

    async def metrics(self) -> Dict[str, Any]:
        return await self._call("GET", "/metrics")

    async def import_box(self, path: str, name: Optional[str] = None, *,
                         untrusted: bool = True) -> "RestBox":
        q = f"?name={_q(name)}" if name else ""
        with open(path, "rb") as f:
            b = await self._call("POST", "/boxes/import" + q, f,
                                 ctype="application/octet-stream")
        return RestBox(self, b)

    @property
    def images(self) -> "_Images":
        return _Images(self)

    async def shutdown(self, timeout=None) -> None:
        self._closed = True

    def close(self) -> None:
        self._closed = True


class _Images:
    def __init__(self, rt: RestBoxlite):
        self._rt = rt

    async def pull(self, ref: str) -> Dict[str, Any]:
        return await self._rt._call("POST", "/images/pull", {"reference": ref})

    async def list(self) -> List[Dict[str, Any]]:
        return (await self._rt._call("GET", "/images?pageSize=1000"))["images"]


def _q(s: str) -> str:
    return urllib.parse.quote(s, safe="")


class RestBox:
    """A box behind the server (like boxlite.Box)."""

    def __init__(self, rt: RestBoxlite, b: Dict[str, Any]):
        self._rt = rt
        self._info = _info(b)
        self.id: str = b["box_id"]
        self.name: Optional[str] = b.get("name")

    def _path(self, tail: str = "") -> str:
        return f"/boxes/{_q(self.id)}{tail}"

    async def info(self) -> BoxInfo:
        self._info = _info(await self._rt._call("GET", self._path()))
        return self._info

    async def start(self) -> None:
        await self._rt._call("POST", self._path("/start"))

    async def stop(self, timeout: float = 30) -> None:
        await self._rt._call("POST", self._path("/stop"), {"timeout_seconds": timeout})

    async def metrics(self) -> Dict[str, Any]:
        return await self._rt._call("GET", self._path("/metrics"))

    async def exec(self, command: str, args=None, env=None, tty: bool = False, user=None,
                   timeout_secs: Optional[float] = None, cwd: Optional[str] = None
                   ) -> "RestExecution":
        if user is not None:
            raise NotAvailableError("the Box API has no per-exec user")
        body: Dict[str, Any] = {"command": command, "args": list(args or []), "tty": tty}
        if env:
            body["env"] = dict(env)
        if timeout_secs is not None:
            body["timeout_seconds"] = timeout_secs
        if cwd is not None:
            body["working_dir"] = cwd
        r = await self._rt._call("POST", self._path("/exec"), body)
        ex = RestExecution(self, r["execution_id"])
        await asyncio.to_thread(ex._attach)
        return ex

    async def copy_in(self, host_path: str, dest: str, copy_options=None) -> None:
        """host_path (file or tree) into the directory dest, as `docker cp` into a dir."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            t.add(host_path, arcname=os.path.basename(os.path.normpath(host_path)))
        await self._rt._call("PUT", self._path(f"/files?path={_q(dest)}"), buf.getvalue(),
                             ctype="application/x-tar")

    async def copy_out(self, src: str, host_dest: str, copy_options=None) -> None:
        """src from the box into the host directory host_dest. The archive is the server's
        (the guest's): names that are absolute or climb with "..", links and devices are
        refused before anything is written."""
        buf = io.BytesIO()
        await self._rt._call("GET", self._path(f"/files?path={_q(src)}"), sink=buf.write)
        buf.seek(0)
        os.makedirs(host_dest, exist_ok=True)
        with tarfile.open(fileobj=buf) as t:
            members = t.getmembers()
            for m in members:
                parts = m.name.split("/")
                if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
                    raise InvalidArgumentError(f"copy_out: refused archive entry {m.name!r}")
                m.mode &= 0o777
            t.extractall(host_dest, members=members)

    async def clone_box(self, *, options=None, name: Optional[str] = None) -> "RestBox":
        return RestBox(self._rt, await self._rt._call("POST", self._path("/clone"),
                                                      {"name": name} if name else {}))

    async def export(self, *, options=None, dest: str) -> str:
        with open(dest, "wb") as f:
            await self._rt._call("POST", self._path("/export"), {}, sink=f.write)
        return dest

    @property
    def snapshot(self) -> "_Snapshots":
        return _Snapshots(self)

    async def __aenter__(self) -> "RestBox":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


class _Snapshots:
    def __init__(self, box: RestBox):
        self._box = box

    async def create(self, name: str, options=None) -> Dict[str, Any]:
        return await self._box._rt._call("POST", self._box._path("/snapshots"), {"name": name})

    async def list(self) -> List[Dict[str, Any]]:
        return (await self._box._rt._call("GET", self._box._path("/snapshots")))["snapshots"]

    async def restore(self, name: str) -> None:
        await self._box._rt._call("POST", self._box._path(f"/snapshots/{_q(name)}/restore"))

    async def remove(self, name: str) -> None:
        await self._box._rt._call("DELETE", self._box._path(f"/snapshots/{_q(name)}"))


class _Stream:
    """stdout()/stderr(): async iterator of str lines fed by the attach thread."""

    def __init__(self) -> None:
        self.q: "asyncio.Queue[Optional[str]]" = asyncio.Queue()
        self.split = LineSplitter()
        self.taken = False

    def __aiter__(self):
        return self

    async def __anext__(self) -> str:
        line = await self.q.get()
        if line is None:
            raise StopAsyncIteration
        return line


class _Stdin:
    def __init__(self, ex: "RestExecution"):
        self._ex = ex

    async def send_input(self, data: bytes) -> None:
        await asyncio.to_thread(self._ex._ws.send_binary, bytes(data))

    async def close(self) -> None:
        await asyncio.to_thread(self._ex._ws.send, json.dumps({"type": "stdin_eof"}))


class _Result:
    def __init__(self, exit_code: int, error_message: Optional[str]):
        self.exit_code = exit_code
        self.error_message = error_message

    def __repr__(self) -> str:
        return f"ExecResult(exit_code={self.exit_code}, error_message={self.error_message!r})"


class RestExecution:
    """A process started through the server, attached over its WebSocket."""

    def __init__(self, box: RestBox, eid: str):
        self._box = box
        self._id = eid
        self._loop = asyncio.get_running_loop()
        self._out, self._err = _Stream(), _Stream()
        self._done: "asyncio.Future[_Result]" = self._loop.create_future()
        self._ws = None

    def id(self) -> str:
        return self._id

    def _attach(self) -> None:
        import websocket  # python3-websocket
        h = self._box._rt._http
        scheme = "wss" if h.tls else "ws"
        url = f"{scheme}://{h.host}:{h.port}{h.base}" + \
            self._box._path(f"/executions/{_q(self._id)}/attach")
        self._ws = websocket.create_connection(url, timeout=h.timeout, header=[
            f"{k}: {v}" for k, v in h.headers().items()])
        threading.Thread(target=self._reader, daemon=True).start()

    def _feed(self, s: _Stream, lines) -> None:
        for line in lines:
            self._loop.call_soon_threadsafe(s.q.put_nowait, line)

    def _reader(self) -> None:
        code, msg = -1, "the connection was lost"
        try:
            while True:
                op, data = self._ws.recv_data()
                if op == 2 and data[:1] in (b"\x01", b"\x02"):
                    s = self._out if data[:1] == b"\x01" else self._err
                    self._feed(s, s.split.feed(data[1:]))
                elif op == 1:
                    m = json.loads(data)
                    if m.get("type") == "exit":
                        code, msg = m.get("exit_code", -1), None
                        break
                else:
                    break
        except Exception as e:  # noqa: BLE001 - reported through wait()
            msg = f"attach: {e}"
        for s in (self._out, self._err):
            self._feed(s, s.split.end() + [None])
        res = _Result(code, msg)
        self._loop.call_soon_threadsafe(
            lambda: self._done.done() or self._done.set_result(res))
        try:
            self._ws.close()
        except Exception:  # noqa: BLE001
            pass

    def _take(self, s: _Stream, what: str) -> _Stream:
        if s.taken:
            raise RuntimeError(f"{what} stream not available (already taken)")
        s.taken = True
        return s

    def stdout(self) -> _Stream:
        return self._take(self._out, "stdout")

    def stderr(self) -> _Stream:
        return self._take(self._err, "stderr")

    def stdin(self) -> _Stdin:
        return _Stdin(self)

    async def wait(self) -> _Result:
        return await asyncio.shield(self._done)

    async def kill(self) -> None:
        await self._box._rt._call("DELETE", self._box._path(f"/executions/{_q(self._id)}"))

    async def signal(self, signo: int) -> None:
        await self._box._rt._call("POST", self._box._path(
            f"/executions/{_q(self._id)}/signal"), {"signal": int(signo)})

    async def resize_tty(self, rows: int, cols: int) -> None:
        try:
            await self._box._rt._call("POST", self._box._path(
                f"/executions/{_q(self._id)}/resize"), {"cols": int(cols), "rows": int(rows)})
        except InvalidStateError as e:
            raise RuntimeError(str(e)) from e
