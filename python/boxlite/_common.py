"""_common.py — what the async and sync APIs share: running blocking native calls off the
event loop, turning options into native arguments, info and metrics objects, line splitting,
and snapshot info and argument helpers."""
import asyncio
import codecs
import concurrent.futures
import hashlib
import itertools
import os
import re
import threading
import weakref
from typing import Any, Callable, Dict, List, Optional

from . import _core
from .errors import not_available
from .options import BUILTIN_IMAGE, BoxOptions, CopyOptions, env_pairs

# One worker per blocking call; the C calls release the GIL and wait in short slices.
_executor = concurrent.futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="boxlite")
_ids = itertools.count(1)

# Every open native runtime, closed (without stopping boxes: their lifeline does that) before
# the interpreter joins the worker threads at exit, so that no parked reader holds it up.
_open_runtimes: "weakref.WeakSet[_core.Runtime]" = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for rt in list(_open_runtimes):
        try:
            rt.close(-2)
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


if hasattr(threading, "_register_atexit"):
    threading._register_atexit(_close_all_at_exit)  # runs before the executor's join


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking native call on a worker thread and await it."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor, lambda: fn(*args))


def next_exec_id() -> str:
    return f"exec-{next(_ids)}"


# ---- options → native arguments ----

def create_kwargs(options: Optional[BoxOptions], name: Optional[str],
                  imported: Optional[str] = None) -> Dict[str, Any]:
    """The native create() arguments. imported: the image name rootfs_path was imported as
    (the caller imports it first, see Boxlite._create_sync)."""
    o = options if options is not None else BoxOptions()
    if not isinstance(o, BoxOptions):
        raise TypeError("options must be a BoxOptions")
    if o.secrets:
        raise not_available("secrets", "secret substitution in the C library")
    image = imported if imported is not None else o.image
    return {
        "image": None if image == BUILTIN_IMAGE else image,
        "name": name,
        "cpus": o.cpus or 0,
        "memory_mib": o.memory_mib or 0,
        "disk_size_gb": o.disk_size_gb or 0,
        "env": [f"{k}={v}" for k, v in o.env] or None,
        "working_dir": o.working_dir,
        "user": o.user,
        "entrypoint": o.entrypoint,
        "cmd": o.cmd,
        "auto_remove": bool(o.auto_remove),
        "detach": bool(o.detach),
        "network_disabled": o.network is not None and o.network.mode == "disabled",
        "volumes": list(o._volumes) or None,
        "ports": list(o._ports) or None,
        "allow_net": list(o.network.allow_net) if o.network is not None and
        o.network.allow_net else None,
    }


def rootfs_image_name(path: str) -> str:
    """The store name a rootfs_path is imported as: localhost/<file name>-<hash of the real
    path>:latest, so that two paths with the same file name do not retag each other."""
    real = os.path.realpath(path)
    base = re.sub(r"[^a-z0-9._-]+", "-", os.path.basename(real.rstrip("/")).lower())
    base = base.strip("._-") or "rootfs"
    digest = hashlib.sha256(real.encode()).hexdigest()[:12]
    return f"localhost/{base[:64]}-{digest}:latest"


def exec_kwargs(command: str, args: Optional[List[str]], env: Any, tty: bool,
                user: Optional[str], timeout_secs: Optional[float],
                cwd: Optional[str]) -> Dict[str, Any]:
    if not isinstance(command, str) or not command:
        raise ValueError("exec needs a command")
    if isinstance(args, str):
        raise TypeError("args must be a list of str, not a str")
    argv = [command, *(args or [])]
    for a in argv:
        if not isinstance(a, str):
            raise TypeError(f"command arguments must be str, got {a!r}")
    timeout_ms = 0
    if timeout_secs is not None:
        if timeout_secs <= 0:
            raise ValueError("timeout_secs must be positive")
        timeout_ms = max(1, int(timeout_secs * 1000))
    return {
        "argv": argv,
        "env": [f"{k}={v}" for k, v in env_pairs(env)] or None,
        "cwd": cwd,
        "user": user,
        "tty": bool(tty),
        "timeout_ms": timeout_ms,
    }


# ---- info and metrics ----

class BoxStateInfo:
    """A box's state: status is configured, running, stopping, stopped, paused, failed or
    unknown."""

    def __init__(self, status: str, pid: Optional[int], reason: str = ""):
        known = ("configured", "running", "stopping", "stopped", "paused", "failed")
        self.status = status if status in known else "unknown"
        self.running = self.status == "running"
        self.pid = pid
        self.reason = reason

    def __repr__(self) -> str:
        return f"BoxStateInfo(status={self.status!r}, running={self.running}, pid={self.pid})"


def _split_list(s: str) -> List[str]:
    return [x.strip() for x in s.split(", ") if x.strip()] if s else []


class BoxInfo:
    """What is known about a box. Also awaitable (await box.info() and box.info() both work)."""

    def __init__(self, d: Dict[str, Any]):
        self.id: str = d["id"]
        self.name: Optional[str] = d["name"] or None
        self.state = BoxStateInfo(d["state"], d["pid"] or None, d["reason"])
        self.status = self.state.status
        self.created_at: str = d["created_at"]
        self.image: str = d["image"]
        self.cpus: int = d["cpus"]
        self.memory_mib: int = d["memory_mib"]
        self.disk_size_gb: Optional[int] = d["disk_size_gb"] or None
        self.network = "disabled" if d["network_disabled"] else "enabled"
        #: published ports as "127.0.0.1:8080->80/tcp" strings
        self.ports: List[str] = _split_list(d["ports"])
        #: shared host directories as "/host:/guest[:ro]" strings
        self.volumes: List[str] = _split_list(d["volumes"])
        self.auto_remove: bool = d["auto_remove"]
        self.detach: bool = d["detach"]
        self.reason: str = d["reason"]
        #: how the box's last boot ran: "kvm" (hardware-isolated), "tcg" (emulated: not a
        #: hardware boundary), or None before its first boot
        self.accel: Optional[str] = d.get("accel") or None
        #: True when the last boot ran under KVM (a hardware boundary)
        self.hardware_isolated: bool = self.accel == "kvm"

    def __await__(self):
        if False:  # pragma: no cover - makes this a generator
            yield
        return self

    def __repr__(self) -> str:
        return (f"BoxInfo(id={self.id!r}, name={self.name!r}, status={self.status!r}, "
                f"image={self.image!r}, created_at={self.created_at!r})")


class BoxMetrics:
    """Per-box counters (kept by this process's handle) and resource use while running."""

    def __init__(self, counters: Dict[str, int], stats: Optional[Dict[str, Any]]):
        self.commands_executed_total = counters["commands"]
        self.exec_errors_total = counters["errors"]
        self.bytes_sent_total = counters["sent"]
        self.bytes_received_total = counters["received"]
        self.total_create_duration_ms = counters.get("create_ms")
        self.guest_boot_duration_ms = counters.get("boot_ms")
        self.cpu_seconds = stats["cpu_seconds"] if stats else None
        self.cpu_percent = None
        self.memory_bytes = stats["memory_bytes"] if stats else None
        self.disk_bytes = stats["disk_bytes"] if stats else None
        self.network_bytes_sent = None
        self.network_bytes_received = None
        self.network_tcp_connections = None
        self.network_tcp_errors = None

    def __repr__(self) -> str:
        return (f"BoxMetrics(commands={self.commands_executed_total}, "
                f"errors={self.exec_errors_total}, mem={self.memory_bytes})")


class RuntimeMetrics:
    """Runtime counters, kept by this process's runtime object."""

    def __init__(self, counters: Dict[str, int], running: int):
        self.boxes_created_total = counters["created"]
        self.boxes_failed_total = counters["failed"]
        self.num_running_boxes = running
        self.total_commands_executed = counters["commands"]
        self.total_exec_errors = counters["errors"]
        self.image_disks_evicted_total = 0
        self.image_disk_bytes_reclaimed_total = 0

    def __repr__(self) -> str:
        return (f"RuntimeMetrics(boxes_created={self.boxes_created_total}, "
                f"boxes_failed={self.boxes_failed_total}, running={self.num_running_boxes}, "
                f"commands={self.total_commands_executed}, errors={self.total_exec_errors})")


def new_box_counters() -> Dict[str, int]:
    return {"commands": 0, "errors": 0, "sent": 0, "received": 0}


def new_runtime_counters() -> Dict[str, int]:
    return {"created": 0, "failed": 0, "commands": 0, "errors": 0}


# ---- output ----

class LineSplitter:
    """Bytes in, str lines out (newline kept), decoded as UTF-8 with replacement."""

    def __init__(self) -> None:
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""

    def feed(self, data: bytes) -> List[str]:
        text = self._pending + self._dec.decode(data)
        lines = text.splitlines(keepends=True)
        if lines and not lines[-1].endswith(("\n", "\r")):
            self._pending = lines.pop()
        else:
            self._pending = ""
        return lines

    def end(self) -> List[str]:
        rest = self._pending + self._dec.decode(b"", final=True)
        self._pending = ""
        return [rest] if rest else []


def collect(ex: "_core.Exec") -> "tuple[bytes, bytes]":
    """Read both streams of a process to their end (blocking; one thread, no deadlock)."""
    out, err = bytearray(), bytearray()
    while True:
        which, data = ex.read(_core.STDOUT | _core.STDERR, -1)
        if not data:
            return bytes(out), bytes(err)
        (out if which == _core.STDOUT else err).extend(data)


class NativeExecResult:
    """What Execution.wait() returns: exit_code (shell status), error_message (why it could
    not start, or None), timed_out, signal (the signal that ended it, or 0)."""

    def __init__(self, t: "tuple[int, int, bool, str]"):
        self.exit_code, self.signal, self.timed_out, msg = t
        self.error_message = msg or None

    def __repr__(self) -> str:
        return (f"ExecResult(exit_code={self.exit_code}, error_message={self.error_message!r},"
                f" timed_out={self.timed_out})")


def copy_kwargs(copy_options: Any) -> Dict[str, bool]:
    o = copy_options if copy_options is not None else CopyOptions()
    if not isinstance(o, CopyOptions):
        raise TypeError("copy_options must be a CopyOptions")
    return {"recursive": bool(o.recursive), "overwrite": bool(o.overwrite),
            "follow_symlinks": bool(o.follow_symlinks),
            "include_parent": bool(o.include_parent)}


class ImagePullResult:
    """What images.pull returns: reference (the canonical name pulled), config_digest
    ("sha256:…", the image id), layer_count."""

    def __init__(self, d: Dict[str, Any]):
        self.reference: str = d["name"]
        self.config_digest: str = d["id"]
        self.layer_count: int = d.get("layers", 0)
        self.manifest_digest: str = d["digest"]
        self.size: int = d["size"]

    def __repr__(self) -> str:
        return (f"ImagePullResult(reference={self.reference!r}, "
                f"config_digest={self.config_digest!r}, layer_count={self.layer_count})")


class ImageInfo:
    """An image in the runtime's store: repository, tag ("" when pulled by digest), id
    ("sha256:…" of the config), cached_at (a timezone-aware datetime), size, digest, name."""

    def __init__(self, d: Dict[str, Any]):
        import datetime
        self.repository: str = d["repository"]
        self.tag: str = d["tag"]
        self.id: str = d["id"]
        self.cached_at = datetime.datetime.fromtimestamp(d["cached_at"], datetime.timezone.utc)
        self.size: int = d["size"]
        self.digest: str = d["digest"]
        self.name: str = d["name"]

    def __repr__(self) -> str:
        return (f"ImageInfo(repository={self.repository!r}, tag={self.tag!r}, id={self.id!r},"
                f" cached_at={self.cached_at.isoformat()!r})")


# ---- snapshots, clones, forks, export ----

class SnapshotInfo:
    """A snapshot of a box: id, box_id, name, kind ("disk", or "full": RAM and device state
    too), parent (the id of the snapshot whose disk layer this one rests on, or None), size
    (bytes its files take on the host; also as size_bytes, BoxLite's name), created_at (unix
    seconds, as BoxLite) and created_at_rfc3339."""

    def __init__(self, d: Dict[str, Any]):
        import datetime
        self.id: str = d["id"]
        self.box_id: str = d["box_id"]
        self.name: str = d["name"]
        self.kind: str = d["kind"]
        self.parent: Optional[str] = d["parent"] or None
        self.size: int = d["size"]
        self.size_bytes: int = d["size"]
        self.created_at_rfc3339: str = d["created_at"]
        when = datetime.datetime.fromisoformat(d["created_at"].replace("Z", "+00:00"))
        self.created_at: int = int(when.timestamp())

    def __repr__(self) -> str:
        return (f"SnapshotInfo(name={self.name!r}, kind={self.kind!r}, box_id={self.box_id!r},"
                f" created_at={self.created_at})")


def snapshot_memory(options: Any, memory: Optional[bool]) -> bool:
    """Whether snapshot.create makes a full snapshot: memory=, else options.memory."""
    from .options import SnapshotOptions
    if options is not None and not isinstance(options, SnapshotOptions):
        raise TypeError("options must be a boxlite.SnapshotOptions")
    if memory is not None:
        return bool(memory)
    return bool(options.memory) if options is not None else False


def option_snapshot(options: Any, cls: type) -> Optional[str]:
    """The snapshot named by a CloneOptions / ExportOptions (None: the box's current disk)."""
    if options is None:
        return None
    if not isinstance(options, cls):
        raise TypeError(f"options must be a boxlite.{cls.__name__}")
    return options.snapshot


def export_path(dest: Any, box_id: str, box_name: Optional[str]) -> str:
    """Where export writes: dest itself, or DEST/<name or id>.boxlite when dest is a
    directory. Absolute."""
    if dest is None:
        raise TypeError("export needs dest (a directory or an archive path)")
    path = os.fspath(dest)
    if os.path.isdir(path):
        path = os.path.join(path, f"{box_name or box_id}.boxlite")
    return os.path.abspath(path)


def fork_jobs() -> int:
    """How many forks start at once: two per CPU, at most 16 (as `boxlite fork -j`)."""
    cpus = os.cpu_count() or 1
    return 16 if cpus > 8 else 2 * cpus


def fork_names(name: Optional[str], count: int) -> List[Optional[str]]:
    """The names of count forks: name itself for one, name-1 ... name-N for more."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError("count must be a positive int")
    if name is None:
        return [None] * count
    return [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
