"""client.py — the REST runtime, boxes and executions of boxlite.rest (see __init__).

Each object has a blocking core shaped like the native module's (`_core.Runtime`, `_core.Box`,
`_core.Exec`: the same method names and dicts), so that boxlite.sync_api's classes wrap a REST
runtime exactly as they wrap a local one; the async faces run those calls on worker threads,
and an execution's output reaches the event loop from its attach reader thread."""
import asyncio
import calendar
import http.client
import json
import os
import shutil
import signal as _signal
import socket
import tarfile
import tempfile
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import _common as C
from .. import _core
from .._async import SnapshotHandle
from ..network import BoxNetwork
from ..errors import (AlreadyExistsError, EngineError, InvalidArgumentError,
                      InvalidStateError, NativeError, NotAvailableError, NotFoundError,
                      ResourceExhaustedError, StoppedError)
from ..options import BoxOptions, CloneOptions, CopyOptions, ExportOptions
from .credential import Credential

_OUT, _ERR = _core.STDOUT, _core.STDERR


class UnsupportedError(EngineError, NotAvailableError):
    """What the server (or the Box API) cannot do. BoxLite's REST runtime raises its
    Unsupported error, which its Python SDK maps to EngineError; this is an EngineError, and
    a NotAvailableError as this module raised before."""


def unsupported(what: str) -> UnsupportedError:
    return UnsupportedError(f"{what} is not supported over the REST API")


_ERRORS = {
    "invalid_argument": InvalidArgumentError, "not_found": NotFoundError,
    "already_exists": AlreadyExistsError, "invalid_state": InvalidStateError,
    "stopped": StoppedError, "unsupported": UnsupportedError,
    "resource_exhausted": ResourceExhaustedError,
}


class BoxliteRestOptions:
    """Where the server is: url ("http://127.0.0.1:8100", with or without /v1), credential
    (a Credential), path_prefix (the `{prefix}` URL segment; "" for none; None asks the
    server's GET /v1/me; `prefix=` is the same attribute), timeout in seconds per request."""

    def __init__(self, url: str, credential: Optional[Credential] = None,
                 path_prefix: Optional[str] = None, *, prefix: Optional[str] = None,
                 timeout: float = 600.0):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"url must be http(s)://host[:port], not {url!r}")
        if credential is not None and not isinstance(credential, Credential):
            raise TypeError("credential must be a boxlite.Credential (ApiKeyCredential)")
        if path_prefix is not None and prefix is not None and path_prefix != prefix:
            raise ValueError("give path_prefix or prefix, not both")
        self.url = url
        self.credential = credential
        self.path_prefix = path_prefix if path_prefix is not None else prefix
        self.timeout = timeout

    @property
    def prefix(self) -> Optional[str]:
        return self.path_prefix

    @prefix.setter
    def prefix(self, value: Optional[str]) -> None:
        self.path_prefix = value

    @staticmethod
    def from_env() -> "BoxliteRestOptions":
        """From BOXLITE_REST_URL (required), BOXLITE_API_KEY and BOXLITE_REST_PATH_PREFIX."""
        from ..errors import ConfigError
        url = os.environ.get("BOXLITE_REST_URL")
        if not url:
            raise ConfigError("BOXLITE_REST_URL not set (the REST server's URL, e.g. "
                              "http://127.0.0.1:8100)")
        from .credential import ApiKeyCredential
        return BoxliteRestOptions(url, ApiKeyCredential.from_env(),
                                  os.environ.get("BOXLITE_REST_PATH_PREFIX"))

    def __repr__(self) -> str:
        cred = "None" if self.credential is None else repr(self.credential)
        return (f"BoxliteRestOptions(url={self.url!r}, credential={cred}, "
                f"path_prefix={self.path_prefix!r})")


class _Http:
    """One server: requests with the key, errors raised as boxlite exceptions."""

    def __init__(self, opts: BoxliteRestOptions):
        u = urllib.parse.urlsplit(opts.url)
        self.tls = u.scheme == "https"
        self.host, self.port = u.hostname, u.port or (443 if self.tls else 80)
        self.root = u.path.rstrip("/")
        if not self.root.endswith("/v1"):
            self.root += "/v1"
        self.credential = opts.credential
        self.timeout = opts.timeout
        self.base = self.root

    def conn(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.tls else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=self.timeout)

    def headers(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        h = {}
        if self.credential is not None:
            h["Authorization"] = f"Bearer {self.credential.get_token().token}"
        h.update(extra or {})
        return h

    def request(self, method: str, path: str, body: Any = None, root: bool = False,
                ctype: Optional[str] = None, sink: Optional[Callable[[bytes], Any]] = None
                ) -> Any:
        """JSON in and out; body may be bytes (with ctype) or a file (sent chunked); sink
        receives a binary response body in chunks instead."""
        data, h = body, {}
        if body is not None and not isinstance(body, (bytes, bytearray)) and \
                not hasattr(body, "read"):
            data, h["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif ctype:
            h["Content-Type"] = ctype
        c = self.conn()
        try:
            c.request(method, (self.root if root else self.base) + path, body=data,
                      headers=self.headers(h), encode_chunked=hasattr(body, "read"))
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


def _q(s: str) -> str:
    return urllib.parse.quote(s, safe="")


def _unix(rfc3339: str) -> int:
    return calendar.timegm(time.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S"))


# ---- the server's JSON → the native module's dicts (so _common's objects read them) ----

def _box_dict(b: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "id": b["box_id"], "name": b.get("name") or "", "state": b["status"],
        "pid": b.get("pid") or 0, "reason": "", "created_at": b["created_at"],
        "image": b["image"], "cpus": b["cpus"], "memory_mib": b["memory_mib"],
        "disk_size_gb": 0, "network_disabled": False, "ports": "", "volumes": "",
        "auto_remove": False, "detach": False, "auto_delete": b.get("auto_delete") or 0}


def _snapshot_dict(s: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": s["id"], "box_id": s["box_id"], "name": s["name"], "kind": "disk",
            "parent": None, "size": s.get("size_bytes") or 0,
            "created_at": C.rfc3339(s["created_at"])}


def _image_dict(i: Dict[str, Any]) -> Dict[str, Any]:
    return {"name": i["reference"], "repository": i["repository"], "tag": i["tag"],
            "id": i["id"], "digest": i["id"], "cached_at": _unix(i["cached_at"]),
            "size": i.get("size_bytes") or 0}


def _box_metrics(m: Dict[str, Any]) -> "C.BoxMetrics":
    """The server's BoxMetrics (its counters for the box, from every client of it)."""
    bm = C.BoxMetrics({"commands": m.get("commands_executed_total", 0),
                       "errors": m.get("exec_errors_total", 0),
                       "sent": m.get("bytes_sent_total", 0),
                       "received": m.get("bytes_received_total", 0)},
                      None, m.get("boot_timing"))
    for k in ("cpu_percent", "memory_bytes", "network_bytes_sent", "network_bytes_received",
              "network_tcp_connections", "network_tcp_errors"):
        setattr(bm, k, m.get(k))
    return bm


def _create_body(options: Any, name: Optional[str]) -> Dict[str, Any]:
    """CreateBoxRequest from BoxOptions; what the Box API has no field for is refused here
    (as BoxLite's REST runtime refuses ports and host binds) rather than dropped."""
    C.create_kwargs(options, name)  # the local checks of types, secrets, advanced options
    body: Dict[str, Any] = {}
    if name is not None:
        body["name"] = name
    if options is None:
        options = BoxOptions()  # its image: BoxLite's default, as the local create's
    if options._ports:
        raise unsupported("Host port publication (ports) — use the server's tunnels")
    if options._volumes:
        raise unsupported("Host bind mounts (volumes) from a client")
    for k in ("image", "rootfs_path", "cpus", "memory_mib", "disk_size_gb", "working_dir",
              "user", "entrypoint", "cmd"):
        if getattr(options, k, None) is not None:
            body[k] = getattr(options, k)
    if options.env:
        body["env"] = dict(options.env)
    if options.detach:
        body["detach"] = True
    if options.auto_delete is not None:  # seconds after a stop; 0 keeps the box
        body["auto_delete"] = options.auto_delete
    elif options.auto_remove:  # given explicitly: BoxLite's --rm is auto_delete=1
        body["auto_delete"] = 1
    if options.network is not None:
        body["network"] = {"mode": options.network.mode}
        if options.network.allow_net:
            body["network"]["allow_net"] = list(options.network.allow_net)
    if options.secrets:
        body["secrets"] = [{"name": s.name, "value": s.value, "hosts": list(s.hosts),
                            **({"placeholder": s.placeholder} if s.placeholder else {})}
                           for s in options.secrets]
    return body


class _RuntimeCore:
    """What _core.Runtime offers the sync API (list, close, images), over HTTP."""

    def __init__(self, rt: "RestBoxlite"):
        self._rt = rt
        self.closed = False

    def list(self) -> List[Dict[str, Any]]:
        out, token = [], None
        for _ in range(10000):
            q = "?pageSize=1000" + (f"&pageToken={_q(token)}" if token else "")
            page = self._rt._request("GET", "/boxes" + q)
            out += [_box_dict(b) for b in page["boxes"]]
            token = page.get("next_page_token")
            if not token:
                break
        return out

    def close(self, timeout_ms: int = -1) -> None:
        """The client does not own the server's boxes (BoxLite's REST shutdown does
        nothing to them); later calls raise StoppedError."""
        self.closed = True

    def image_pull(self, reference: str) -> Dict[str, Any]:
        return _image_dict(self._rt._request("POST", "/images/pull", {"reference": reference}))

    def image_list(self) -> List[Dict[str, Any]]:
        return [_image_dict(i) for i in
                self._rt._request("GET", "/images?pageSize=1000")["images"]]


class RestBoxlite:
    """The runtime behind a Box API server (async, like boxlite.Boxlite); the `_*_sync`
    methods and `_core` are what boxlite.SyncBoxlite.rest() calls."""

    def __init__(self, options: BoxliteRestOptions):
        if not isinstance(options, BoxliteRestOptions):
            raise TypeError("Boxlite.rest() needs a boxlite.BoxliteRestOptions")
        self._http = _Http(options)
        self._prefix = options.path_prefix
        self._prefix_lock = threading.Lock()
        self._core = _RuntimeCore(self)

    def _request(self, *a: Any, **kw: Any) -> Any:
        if self._core.closed:
            raise StoppedError("the runtime has been shut down")
        with self._prefix_lock:
            if self._prefix is None:
                me = self._http.request("GET", "/me", None, True)
                self._prefix = (me or {}).get("path_prefix") or ""
            if self._prefix:
                self._http.base = f"{self._http.root}/{self._prefix}"
        return self._http.request(*a, **kw)

    # ---- blocking ----

    def _create_sync(self, options: Any, name: Optional[str]) -> "RestBox":
        return RestBox(self, self._request("POST", "/boxes", _create_body(options, name)))

    def _get_sync(self, id_or_name: str) -> "Optional[RestBox]":
        try:
            return RestBox(self, self._request("GET", f"/boxes/{_q(id_or_name)}"))
        except NotFoundError:
            return None

    def _get_info_sync(self, id_or_name: str) -> "Optional[C.BoxInfo]":
        box = self._get_sync(id_or_name)
        return None if box is None else C.BoxInfo(box._dict)

    def _remove_sync(self, id_or_name: str, force: bool) -> None:
        self._request("DELETE", f"/boxes/{_q(id_or_name)}?force={str(bool(force)).lower()}")

    def _metrics_sync(self) -> "C.RuntimeMetrics":
        m = self._request("GET", "/metrics")
        return C.RuntimeMetrics({"created": m["boxes_created_total"],
                                 "failed": m["boxes_failed_total"],
                                 "commands": m["total_commands_executed"],
                                 "errors": m["total_exec_errors"]}, m["num_running_boxes"])

    def _import_box_sync(self, path: Any, name: Optional[str], untrusted: bool) -> "RestBox":
        q = f"?name={_q(name)}" if name else ""
        with open(os.fspath(path), "rb") as f:  # the server always checks it as untrusted
            b = self._request("POST", "/boxes/import" + q, f,
                              ctype="application/octet-stream")
        return RestBox(self, b)

    # ---- async ----

    async def create(self, options: Any = None, name: Optional[str] = None) -> "RestBox":
        return await asyncio.to_thread(self._create_sync, options, name)

    async def get(self, id_or_name: str) -> "Optional[RestBox]":
        return await asyncio.to_thread(self._get_sync, id_or_name)

    async def get_info(self, id_or_name: str) -> "Optional[C.BoxInfo]":
        return await asyncio.to_thread(self._get_info_sync, id_or_name)

    async def list_info(self) -> "List[C.BoxInfo]":
        return [C.BoxInfo(d) for d in await asyncio.to_thread(self._core.list)]

    async def get_or_create(self, options: Any = None, name: Optional[str] = None
                            ) -> "Tuple[RestBox, bool]":
        box = await self.get(name) if name else None
        return (box, False) if box else (await self.create(options, name), True)

    async def remove(self, id_or_name: str, force: bool = False) -> None:
        await asyncio.to_thread(self._remove_sync, id_or_name, force)

    async def metrics(self) -> "C.RuntimeMetrics":
        return await asyncio.to_thread(self._metrics_sync)

    async def import_box(self, path: str, name: Optional[str] = None, *,
                         untrusted: bool = True) -> "RestBox":
        return await asyncio.to_thread(self._import_box_sync, path, name, untrusted)

    @property
    def images(self) -> "_Images":
        return _Images(self)

    async def shutdown(self, timeout: Optional[float] = None) -> None:
        self._core.close()

    def close(self) -> None:
        self._core.close()

    def __repr__(self) -> str:
        return f"RestBoxlite({self._http.root!r})"


class _Images:
    def __init__(self, rt: RestBoxlite):
        self._rt = rt

    async def pull(self, reference: str) -> "C.ImagePullResult":
        d = await asyncio.to_thread(self._rt._core.image_pull, reference)
        return C.ImagePullResult(d, reference)

    async def list(self) -> "List[C.ImageInfo]":
        return [C.ImageInfo(d) for d in await asyncio.to_thread(self._rt._core.image_list)]


def _safe_members(t: tarfile.TarFile) -> List[tarfile.TarInfo]:
    """The archive is the server's (the guest's): names that are absolute or climb with
    "..", links and devices are refused before anything is written."""
    members = t.getmembers()
    for m in members:
        parts = m.name.split("/")
        if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
            raise InvalidArgumentError(f"copy_out: refused archive entry {m.name!r}")
        m.mode &= 0o777
    return members


class _BoxCore:
    """What _core.Box offers the sync API (info, stop, copies, snapshots), over HTTP."""

    closed = False

    def __init__(self, box: "RestBox"):
        self._box = box

    def _call(self, method: str, tail: str, *a: Any, **kw: Any) -> Any:
        return self._box._rt._request(method, f"/boxes/{_q(self._box.id)}{tail}", *a, **kw)

    @property
    def id(self) -> str:
        return self._box.id

    @property
    def name(self) -> str:
        return self._box.name or ""

    def info(self) -> Dict[str, Any]:
        self._box._dict = _box_dict(self._call("GET", ""))
        return self._box._dict

    def start(self) -> None:
        self._call("POST", "/start")

    def stop(self, timeout: float = 30) -> None:
        self._call("POST", "/stop", {"timeout_seconds": timeout})

    def copy_in(self, host_path: str, dest: str, recursive: bool = True,
                overwrite: bool = True, follow_symlinks: bool = False,
                include_parent: bool = True) -> None:
        """host_path (file or tree) into the directory dest, as a tar stream from a
        temporary file (never the whole tree in memory)."""
        src = os.path.normpath(os.fspath(host_path))
        if os.path.isdir(src) and not recursive:
            raise InvalidArgumentError(f"copy_in: {src} is a directory (recursive=False)")
        with tempfile.TemporaryFile() as f:
            with tarfile.open(fileobj=f, mode="w", dereference=follow_symlinks) as t:
                if os.path.isdir(src) and not include_parent:
                    for child in sorted(os.listdir(src)):
                        t.add(os.path.join(src, child), arcname=child, recursive=recursive)
                else:
                    t.add(src, arcname=os.path.basename(src), recursive=recursive)
            f.seek(0)
            self._call("PUT", f"/files?path={_q(dest)}&overwrite={str(overwrite).lower()}",
                       f, ctype="application/x-tar")

    def copy_out(self, src: str, host_dest: str, recursive: bool = True,
                 overwrite: bool = True, follow_symlinks: bool = False,
                 include_parent: bool = True) -> None:
        """src from the box into host_dest: into it when it is a directory (the
        contents only with include_parent=False), else as host_dest."""
        host_dest = os.fspath(host_dest)
        q = f"/files?path={_q(src)}&follow_symlinks={str(follow_symlinks).lower()}"
        with tempfile.TemporaryFile() as f:
            self._call("GET", q, sink=f.write)
            f.seek(0)
            parent = os.path.dirname(os.path.abspath(host_dest))
            os.makedirs(parent, exist_ok=True)
            # staged beside the result (one filesystem: the moves are renames)
            stage = tempfile.mkdtemp(dir=host_dest if os.path.isdir(host_dest) else parent,
                                     prefix=".boxlite-copy-")
            try:
                with tarfile.open(fileobj=f) as t:
                    t.extractall(stage, members=_safe_members(t))
                tops = os.listdir(stage)
                if len(tops) != 1:
                    raise InvalidArgumentError(f"copy_out: the archive of {src!r} has "
                                               f"{len(tops)} top entries, not 1")
                top = os.path.join(stage, tops[0])
                if not os.path.isdir(host_dest):
                    if os.path.exists(host_dest) and not overwrite:
                        raise AlreadyExistsError(f"copy_out: {host_dest} exists")
                    os.replace(top, host_dest)
                    return
                into = [top] if include_parent or not os.path.isdir(top) else \
                    [os.path.join(top, c) for c in os.listdir(top)]
                for p in into:
                    _move(p, os.path.join(host_dest, os.path.basename(p)), overwrite)
            finally:
                shutil.rmtree(stage, ignore_errors=True)

    def tunnel(self, port: int) -> int:
        """A connected socket (its fd, the caller's) to port inside the box: the server's
        tunnel listener for (box, port), then an HTTP/1.1 CONNECT with the key."""
        uri = self._call("POST", f"/network/tunnel?port={int(port)}")["uri"]
        u = urllib.parse.urlsplit(uri)
        if u.scheme != "http" or not u.hostname or not u.port:
            raise NativeError(f"tunnel: the server answered an odd URI {uri[:100]!r}")
        authority = f"{u.hostname}:{u.port}"
        auth = self._box._rt._http.headers().get("Authorization")
        s = socket.create_connection((u.hostname, u.port), timeout=self._box._rt._http.timeout)
        try:
            s.sendall((f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n" +
                       (f"Proxy-Authorization: {auth}\r\n" if auth else "") + "\r\n").encode())
            head = b""
            while not head.endswith(b"\r\n\r\n"):  # byte by byte: what follows is the box's
                d = s.recv(1)
                if not d or len(head) > 8192:
                    raise NativeError(f"tunnel: no answer to CONNECT ({head[:100]!r})")
                head += d
            status = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"?"
            if status != b"200":
                cls = {b"404": NotFoundError, b"409": InvalidStateError,
                       b"400": InvalidArgumentError}.get(status, NativeError)
                raise cls(f"tunnel to port {port}: " + head.split(b"\r\n", 1)[0].decode(
                    "utf-8", "replace"))
            s.settimeout(None)
            return s.detach()
        finally:
            s.close()  # nothing to close once detached

    def snapshot_create(self, name: str, memory: bool) -> Dict[str, Any]:
        if memory:
            raise unsupported("A full snapshot (memory=True)")
        return _snapshot_dict(self._call("POST", "/snapshots", {"name": name}))

    def snapshot_list(self) -> List[Dict[str, Any]]:
        return [_snapshot_dict(s) for s in self._call("GET", "/snapshots")["snapshots"]]

    def snapshot_restore(self, name: str, detach: bool = False) -> None:
        self._call("POST", f"/snapshots/{_q(name)}/restore")

    def snapshot_remove(self, name: str) -> None:
        self._call("DELETE", f"/snapshots/{_q(name)}")


def _move(src: str, dst: str, overwrite: bool) -> None:
    if os.path.lexists(dst):
        if not overwrite:
            raise AlreadyExistsError(f"copy_out: {dst} exists")
        if os.path.isdir(dst) and os.path.isdir(src):
            for c in os.listdir(src):
                _move(os.path.join(src, c), os.path.join(dst, c), overwrite)
            return
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        else:
            os.unlink(dst)
    os.replace(src, dst)


class RestBox:
    """A box behind the server (like boxlite.Box)."""

    def __init__(self, rt: RestBoxlite, b: Dict[str, Any]):
        self._rt = rt
        self._dict = _box_dict(b)
        self.id: str = b["box_id"]
        self.name: Optional[str] = b.get("name") or None
        self._core = _BoxCore(self)
        self._counters = C.new_box_counters()
        self.snapshot = SnapshotHandle(self)  # on _BoxCore's snapshot_* calls
        self.network = BoxNetwork(self)  # network.tunnel(port), through the server

    # ---- blocking (boxlite.sync_api's SyncBox calls these) ----

    def _start_sync(self) -> None:
        self._core.start()

    def _exec_sync(self, kw: Dict[str, Any]) -> "_ExecCore":
        if kw.get("user") is not None:
            raise unsupported("A per-exec user")
        argv = kw["argv"]
        body: Dict[str, Any] = {"command": argv[0], "args": argv[1:], "tty": kw["tty"]}
        if kw.get("env"):
            body["env"] = dict(e.split("=", 1) for e in kw["env"])
        if kw.get("timeout_ms"):
            body["timeout_seconds"] = kw["timeout_ms"] / 1000
        if kw.get("cwd") is not None:
            body["working_dir"] = kw["cwd"]
        self._counters["commands"] += 1
        try:
            r = self._core._call("POST", "/exec", body)
        except Exception:
            self._counters["errors"] += 1
            raise
        return _ExecCore(self, r["execution_id"], bool(kw.get("timeout_ms")))

    def _metrics_sync(self) -> "C.BoxMetrics":
        return _box_metrics(self._core._call("GET", "/metrics"))

    def _clone_sync(self, options: Any, name: Optional[str]) -> "RestBox":
        if C.option_snapshot(options, CloneOptions) is not None:
            raise unsupported("Cloning from a snapshot")
        return RestBox(self._rt, self._core._call("POST", "/clone",
                                                  {"name": name} if name else {}))

    def _fork_sync(self, snapshot: str, count: int, name: Optional[str],
                   detach: bool) -> "List[RestBox]":
        raise unsupported("fork (the Box API has no fork endpoint)")

    def _export_sync(self, options: Any, dest: Any) -> str:
        if C.option_snapshot(options, ExportOptions) is not None:
            raise unsupported("Exporting a snapshot")
        path = C.export_path(dest, self.id, self.name)
        with open(path, "wb") as f:
            self._core._call("POST", "/export", {}, sink=f.write)
        return path

    # ---- async ----

    def info(self) -> "C.BoxInfo":
        """The box's info (one request); usable with or without await, as Box.info()."""
        return C.BoxInfo(self._core.info())

    async def start(self) -> None:
        await asyncio.to_thread(self._start_sync)

    async def stop(self, timeout: float = 30) -> None:
        await asyncio.to_thread(self._core.stop, timeout)

    async def metrics(self) -> "C.BoxMetrics":
        return await asyncio.to_thread(self._metrics_sync)

    async def exec(self, command: str, args: Optional[List[str]] = None, env: Any = None,
                   tty: bool = False, user: Optional[str] = None,
                   timeout_secs: Optional[float] = None, cwd: Optional[str] = None
                   ) -> "RestExecution":
        kw = C.exec_kwargs(command, args, env, tty, user, timeout_secs, cwd)
        return RestExecution(self, await asyncio.to_thread(self._exec_sync, kw))

    async def copy_in(self, host_path: str, container_dest: str,
                      copy_options: Optional[CopyOptions] = None) -> None:
        kw = C.copy_kwargs(copy_options)
        await asyncio.to_thread(lambda: self._core.copy_in(host_path, container_dest, **kw))

    async def copy_out(self, container_src: str, host_dest: str,
                       copy_options: Optional[CopyOptions] = None) -> None:
        kw = C.copy_kwargs(copy_options)
        await asyncio.to_thread(lambda: self._core.copy_out(container_src, host_dest, **kw))

    async def clone_box(self, *, options: Any = None, name: Optional[str] = None) -> "RestBox":
        return await asyncio.to_thread(self._clone_sync, options, name)

    async def fork(self, snapshot: str, count: int = 1, *, name: Optional[str] = None,
                   detach: bool = False) -> "List[RestBox]":
        return self._fork_sync(snapshot, count, name, detach)

    async def export(self, *, options: Any = None, dest: str) -> str:
        return await asyncio.to_thread(self._export_sync, options, dest)

    async def __aenter__(self) -> "RestBox":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"RestBox(id={self.id!r}, name={self.name!r})"


class _ExecCore:
    """What _core.Exec offers (read, write, close_stdin, wait, signal, resize), over the
    attach WebSocket: one reader thread keeps the output (both streams, unbounded: the
    server holds the process back only while nothing reads its socket) and the result."""

    def __init__(self, box: RestBox, eid: str, timed: bool):
        import websocket  # python3-websocket
        self._box, self.id, self._timed = box, eid, timed
        self._cv = threading.Condition()
        self._bufs = {_OUT: bytearray(), _ERR: bytearray()}
        self._end: Optional[Tuple[int, int, bool, str]] = None
        #: called on the reader thread after new output or the end (the async face's wake)
        self.waker: Optional[Callable[[], None]] = None
        h = box._rt._http
        url = f"{'wss' if h.tls else 'ws'}://{h.host}:{h.port}{h.base}" \
              f"/boxes/{_q(box.id)}/executions/{_q(eid)}/attach"
        self._ws = websocket.create_connection(url, timeout=h.timeout, header=[
            f"{k}: {v}" for k, v in h.headers().items()])
        threading.Thread(target=self._reader, daemon=True, name="boxlite-rest-attach").start()

    def _wake(self) -> None:
        self._cv.notify_all()
        w = self.waker
        if w is not None:
            try:
                w()
            except RuntimeError:  # the loop that wanted it has closed
                pass

    def _reader(self) -> None:
        code, msg = -1, "the connection was lost"
        try:
            while True:  # until the exit frame or the connection ends (server pings: 15 s)
                op, data = self._ws.recv_data()
                if op == 2 and data[:1] in (b"\x01", b"\x02"):
                    with self._cv:
                        self._bufs[_OUT if data[:1] == b"\x01" else _ERR].extend(data[1:])
                        self._wake()
                elif op == 1:
                    m = json.loads(data)
                    if m.get("type") == "exit":
                        code, msg = int(m.get("exit_code", -1)), ""
                        break
                else:
                    break
        except Exception as e:  # noqa: BLE001 - reported through wait()
            msg = f"attach: {e}"
        timed_out = False
        if self._timed and not msg:
            try:  # the exit frame has no timed_out; the execution's status has
                st = self._box._core._call("GET", f"/executions/{_q(self.id)}")
                timed_out = st.get("status") == "timed_out"
                msg = st.get("error_message") or ""
            except Exception:  # noqa: BLE001 - the exit code stands
                pass
        try:
            self._ws.close()
        except Exception:  # noqa: BLE001
            pass
        with self._cv:
            self._end = (code, -code if code < 0 else 0, timed_out, msg)
            self._wake()

    def _take(self, mask: int) -> "Optional[Tuple[int, bytes]]":
        """What is there now: (stream, bytes); (0, b"") at the end; None: nothing yet."""
        with self._cv:
            for which in (_OUT, _ERR):
                if mask & which and self._bufs[which]:
                    data = bytes(self._bufs[which])
                    self._bufs[which].clear()
                    return which, data
            return (0, b"") if self._end is not None else None

    def read(self, mask: int, timeout_ms: int = -1) -> Tuple[int, bytes]:
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        with self._cv:
            while True:
                r = self._take(mask)
                if r is not None:
                    return r
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return 0, b""
                self._cv.wait(left)

    def wait(self, timeout_ms: int = -1) -> Tuple[int, int, bool, str]:
        with self._cv:
            self._cv.wait_for(lambda: self._end is not None,
                              None if timeout_ms < 0 else timeout_ms / 1000)
            if self._end is None:
                raise InvalidStateError("the process is still running")
            return self._end

    def write(self, data: bytes) -> None:
        self._ws.send_binary(bytes(data))

    def close_stdin(self) -> None:
        self._ws.send(json.dumps({"type": "stdin_eof"}))

    def signal(self, signo: int) -> None:
        if int(signo) == _signal.SIGKILL:  # the spec's kill is DELETE
            self._box._core._call("DELETE", f"/executions/{_q(self.id)}")
        else:
            self._box._core._call("POST", f"/executions/{_q(self.id)}/signal",
                                  {"signal": int(signo)})

    def resize(self, rows: int, cols: int) -> None:
        self._box._core._call("POST", f"/executions/{_q(self.id)}/resize",
                              {"cols": int(cols), "rows": int(rows)})


class _Stream:
    """stdout()/stderr(): an async iterator of str lines (newline kept)."""

    def __init__(self, ex: "RestExecution", mask: int):
        self._ex, self._mask = ex, mask
        self._split = C.LineSplitter()
        self._lines: List[str] = []
        self._done = False

    def __aiter__(self) -> "_Stream":
        return self

    async def __anext__(self) -> str:
        while not self._lines:
            if self._done:
                raise StopAsyncIteration
            _, data = await self._ex._next(self._mask)
            if data:
                self._ex._box._counters["received"] += len(data)
                self._lines = self._split.feed(data)
            else:
                self._done, self._lines = True, self._split.end()
        return self._lines.pop(0)


class _Stdin:
    def __init__(self, ex: "RestExecution"):
        self._ex = ex

    async def send_input(self, data: bytes) -> None:
        if isinstance(data, str):
            data = data.encode()
        await asyncio.to_thread(self._ex._core.write, data)

    async def close(self) -> None:
        await asyncio.to_thread(self._ex._core.close_stdin)


class RestExecution:
    """A process started through the server (like boxlite.Execution): the attach reader
    thread wakes the event loop; no thread waits per await."""

    def __init__(self, box: RestBox, core: _ExecCore):
        self._box, self._core = box, core
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self._taken: set = set()
        core.waker = lambda: self._loop.call_soon_threadsafe(self._event.set)

    def id(self) -> str:
        return self._core.id

    async def _next(self, mask: int) -> Tuple[int, bytes]:
        while True:
            self._event.clear()
            r = self._core._take(mask)
            if r is not None:
                return r
            await self._event.wait()

    async def _collect(self) -> Tuple[bytes, bytes]:
        out, err = bytearray(), bytearray()
        while True:
            which, data = await self._next(_OUT | _ERR)
            if not data:
                return bytes(out), bytes(err)
            (out if which == _OUT else err).extend(data)

    def _take(self, what: str) -> None:
        if what in self._taken:
            raise RuntimeError(f"{what} stream not available (already taken)")
        self._taken.add(what)

    def stdout(self) -> _Stream:
        self._take("stdout")
        return _Stream(self, _OUT)

    def stderr(self) -> _Stream:
        self._take("stderr")
        return _Stream(self, _ERR)

    def stdin(self) -> _Stdin:
        return _Stdin(self)

    async def wait(self) -> "C.NativeExecResult":
        while self._core._end is None:
            self._event.clear()
            if self._core._end is not None:
                break
            await self._event.wait()
        return C.NativeExecResult(self._core._end)

    async def kill(self) -> None:
        await asyncio.to_thread(self._core.signal, _signal.SIGKILL)

    async def signal(self, signo: int) -> None:
        await asyncio.to_thread(self._core.signal, signo)

    async def resize_tty(self, rows: int, cols: int) -> None:
        await asyncio.to_thread(self._core.resize, rows, cols)

    def __repr__(self) -> str:
        return f"RestExecution(id={self._core.id!r})"
