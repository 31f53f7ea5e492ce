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
from .options import BUILTIN_IMAGE, BoxOptions, CopyOptions, Secret, env_pairs

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
    for sec in o.secrets:
        if not isinstance(sec, Secret):
            raise TypeError("secrets must be a list of boxlite.Secret")
    if o.advanced is not None and o.advanced._unsupported():
        raise not_available("AdvancedBoxOptions " + ", ".join(o.advanced._unsupported()),
                            "capability, rlimit and health-check settings in the C library")
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
        "auto_remove": True if o.auto_remove is None else bool(o.auto_remove),
        "detach": bool(o.detach),
        "auto_delete": -1 if o.auto_delete is None else int(o.auto_delete),
        "network_disabled": o.network is not None and o.network.mode == "disabled",
        "volumes": list(o._volumes) or None,
        "ports": list(o._ports) or None,
        "allow_net": list(o.network.allow_net) if o.network is not None and
        o.network.allow_net else None,
        "secrets": [(x.name, x.value, list(x.hosts), x.placeholder) for x in o.secrets] or None,
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

    __slots__ = ("status", "running", "pid", "reason")
    status: str
    running: bool
    pid: Optional[int]
    reason: str

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


class PublishedPort:
    """One published port of a box: host_ip:host_port on the host → guest_port, protocol
    "tcp" or "udp"."""

    __slots__ = ("guest_port", "host_ip", "host_port", "protocol")
    guest_port: int
    host_ip: str
    host_port: int
    protocol: str

    def __init__(self, guest_port: int, host_ip: str, host_port: int, protocol: str = "tcp"):
        self.guest_port, self.host_ip = guest_port, host_ip
        self.host_port, self.protocol = host_port, protocol

    @classmethod
    def _parse(cls, s: str) -> "PublishedPort":
        """From the C library's "127.0.0.1:8080->80/tcp"."""
        host, _, rest = s.partition("->")
        guest, _, proto = rest.partition("/")
        ip, _, port = host.rpartition(":")
        return cls(int(guest), ip.strip("[]"), int(port), proto or "tcp")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublishedPort) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return (f"PublishedPort(guest_port={self.guest_port}, host_ip={self.host_ip!r}, "
                f"host_port={self.host_port}, protocol={self.protocol!r})")


class NetworkDirectionInfo:
    """One direction of a box's network: mode "enabled" or "disabled", allow_net."""

    __slots__ = ("mode", "allow_net")
    mode: str
    allow_net: List[str]

    def __init__(self, mode: str, allow_net: Optional[List[str]] = None):
        self.mode, self.allow_net = mode, list(allow_net or [])

    def __repr__(self) -> str:
        return f"NetworkDirectionInfo(mode={self.mode!r}, allow_net={self.allow_net!r})"


class NetworkInfo:
    """A box's network as resolved: outbound and inbound directions and the published ports
    (None when not known). mode and allow_net are the outbound ones (BoxLite's older view)."""

    __slots__ = ("outbound", "inbound", "published_ports")
    outbound: NetworkDirectionInfo
    inbound: NetworkDirectionInfo
    published_ports: Optional[List[PublishedPort]]

    def __init__(self, outbound: NetworkDirectionInfo, inbound: NetworkDirectionInfo,
                 published_ports: Optional[List[PublishedPort]] = None):
        self.outbound, self.inbound = outbound, inbound
        self.published_ports = published_ports

    @property
    def mode(self) -> str:
        return self.outbound.mode

    @property
    def allow_net(self) -> List[str]:
        return list(self.outbound.allow_net)

    def __repr__(self) -> str:
        return (f"NetworkInfo(outbound={self.outbound!r}, inbound={self.inbound!r}, "
                f"published_ports={self.published_ports!r})")


class HealthState:
    """A box's health: none, starting, healthy or unhealthy (str() is the value)."""

    __slots__ = ("value",)
    value: str

    def __init__(self, value: str = "none"):
        self.value = value

    def is_none(self) -> bool:
        return self.value == "none"

    def is_starting(self) -> bool:
        return self.value == "starting"

    def is_healthy(self) -> bool:
        return self.value == "healthy"

    def is_unhealthy(self) -> bool:
        return self.value == "unhealthy"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"<HealthState: {self.value}>"


class HealthStatus:
    """The health check's state, failures in a row and last check time (RFC 3339 or None).
    No health check runs here (docs/python.md): always state none."""

    __slots__ = ("state", "failures", "last_check")
    state: HealthState
    failures: int
    last_check: Optional[str]

    def __init__(self, state: Optional[HealthState] = None, failures: int = 0,
                 last_check: Optional[str] = None):
        self.state = state if state is not None else HealthState()
        self.failures, self.last_check = failures, last_check

    def __repr__(self) -> str:
        return f"HealthStatus(state={self.state.value!r}, failures={self.failures})"


def _network_info(d: Dict[str, Any]) -> NetworkInfo:
    """A box's NetworkInfo from the C info: outbound as the box was made, inbound through
    published ports (the user-mode NAT takes no other inbound connections)."""
    ports = [PublishedPort._parse(p) for p in _split_list(d.get("ports", ""))]
    out = NetworkDirectionInfo("disabled" if d.get("network_disabled") else "enabled",
                               _split_list(d.get("allow_net", "")))
    inbound = NetworkDirectionInfo("enabled" if ports else "disabled")
    return NetworkInfo(out, inbound, ports)


class BoxInfo:
    """What is known about a box (BoxLite's fields first). image is the reference as it was
    written at create ("python:3.11"), whichever registry or mirror served it; image_name
    the name it resolved to, image_id the config digest. Also awaitable (await box.info()
    and box.info() both work)."""

    __slots__ = ("id", "name", "state", "created_at", "started_at", "image", "cpus",
                 "memory_mib", "network", "auto_stop", "auto_delete", "auto_resume",
                 "health_status", "status", "image_name", "image_id", "disk_size_gb", "ports",
                 "volumes", "auto_remove", "detach", "reason", "accel", "hardware_isolated",
                 "exit_code")
    id: str
    name: Optional[str]
    state: BoxStateInfo
    created_at: str
    started_at: Optional[str]
    image: str
    cpus: int
    memory_mib: int
    network: Optional[NetworkInfo]
    auto_stop: int
    auto_delete: int
    auto_resume: bool
    health_status: HealthStatus
    status: str
    image_name: str
    image_id: Optional[str]
    disk_size_gb: Optional[int]
    ports: List[str]
    volumes: List[str]
    auto_remove: bool
    detach: bool
    reason: str
    accel: Optional[str]
    hardware_isolated: bool
    exit_code: Optional[int]

    def __init__(self, d: Dict[str, Any]):
        self.id = d["id"]
        self.name = d["name"] or None
        self.state = BoxStateInfo(d["state"], d["pid"] or None, d["reason"])
        self.status = self.state.status
        self.created_at = d["created_at"]
        self.started_at = d.get("started_at") or None
        #: the reference as written at create; image_name: what it resolved to
        self.image = d.get("image_ref") or d["image"]
        self.image_name = d["image"]
        self.image_id = d.get("image_id") or None
        self.cpus = d["cpus"]
        self.memory_mib = d["memory_mib"]
        self.disk_size_gb = d["disk_size_gb"] or None
        self.network = _network_info(d)
        self.auto_stop = 0
        #: seconds a stopped box is kept (BoxLite's: auto_delete, else 1 for auto_remove)
        self.auto_delete = (d["auto_delete"] if d.get("auto_delete", -1) >= 0
                            else int(d["auto_remove"]))
        self.auto_resume = False
        self.health_status = HealthStatus()
        #: published ports as "127.0.0.1:8080->80/tcp" strings
        self.ports = _split_list(d["ports"])
        #: shared host directories as "/host:/guest[:ro]" strings
        self.volumes = _split_list(d["volumes"])
        self.auto_remove = d["auto_remove"]
        self.detach = d["detach"]
        #: the main process's exit status of its last boot; None while it runs or never ran
        self.exit_code = d.get("exit_code")
        self.reason = d["reason"]
        #: how the box's last boot ran: "kvm" (hardware-isolated), "tcg" (emulated: not a
        #: hardware boundary), or None before its first boot
        self.accel = d.get("accel") or None
        #: True when the last boot ran under KVM (a hardware boundary)
        self.hardware_isolated = self.accel == "kvm"

    def __await__(self):
        if False:  # pragma: no cover - makes this a generator
            yield
        return self

    def __repr__(self) -> str:
        return (f"BoxInfo(id={self.id!r}, name={self.name!r}, status={self.status!r}, "
                f"image={self.image!r}, created_at={self.created_at!r})")


# BoxMetrics' boot timing attributes and the BootTiming names (the library's timing() and the
# Box API's boot_timing) they come from: None where the stage was not measured.
BOOT_TIMING = (("total_create_duration_ms", "total_create_ms"),
               ("guest_boot_duration_ms", "guest_boot_ms"),
               ("stage_filesystem_setup_ms", "filesystem_setup_ms"),
               ("stage_image_prepare_ms", "image_prepare_ms"),
               ("stage_init_rootfs_ms", "guest_rootfs_ms"),
               ("stage_box_config_ms", "box_config_ms"),
               ("stage_box_spawn_ms", "box_spawn_ms"),
               ("stage_container_init_ms", "container_init_ms"))


class BoxMetrics:
    """Per-box counters (kept by this process's handle), resource use while running, and the
    stages of the handle's create and last start (boxlite_box_get_timing, docs/api.md)."""

    __slots__ = ("commands_executed_total", "exec_errors_total", "bytes_sent_total",
                 "bytes_received_total", "cpu_seconds", "cpu_percent", "memory_bytes",
                 "disk_bytes", "network_bytes_sent", "network_bytes_received",
                 "network_tcp_connections", "network_tcp_errors") + tuple(a for a, _ in BOOT_TIMING)
    commands_executed_total: int
    exec_errors_total: int
    bytes_sent_total: int
    bytes_received_total: int
    total_create_duration_ms: Optional[int]
    guest_boot_duration_ms: Optional[int]
    cpu_seconds: Optional[float]
    cpu_percent: Optional[float]
    memory_bytes: Optional[int]
    disk_bytes: Optional[int]
    network_bytes_sent: Optional[int]
    network_bytes_received: Optional[int]
    network_tcp_connections: Optional[int]
    network_tcp_errors: Optional[int]
    stage_filesystem_setup_ms: Optional[int]
    stage_image_prepare_ms: Optional[int]
    stage_init_rootfs_ms: Optional[int]
    stage_box_config_ms: Optional[int]
    stage_box_spawn_ms: Optional[int]
    stage_container_init_ms: Optional[int]

    def __init__(self, counters: Dict[str, int], stats: Optional[Dict[str, Any]],
                 timing: Optional[Dict[str, Optional[int]]] = None):
        self.commands_executed_total = counters["commands"]
        self.exec_errors_total = counters["errors"]
        self.bytes_sent_total = counters["sent"]
        self.bytes_received_total = counters["received"]
        for attr, key in BOOT_TIMING:
            setattr(self, attr, (timing or {}).get(key))
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

    __slots__ = ("boxes_created_total", "boxes_failed_total", "num_running_boxes",
                 "total_commands_executed", "total_exec_errors", "image_disks_evicted_total",
                 "image_disk_bytes_reclaimed_total")
    boxes_created_total: int
    boxes_failed_total: int
    num_running_boxes: int
    total_commands_executed: int
    total_exec_errors: int
    image_disks_evicted_total: int
    image_disk_bytes_reclaimed_total: int

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
    """What Execution.wait() returns: exit_code (the process's code, or minus the signal that
    ended it, -9 for SIGKILL, as BoxLite's), error_message (why it could not start, or None),
    timed_out, signal (the signal that ended it, or 0)."""

    def __init__(self, t: "tuple[int, int, bool, str]"):
        code, self.signal, self.timed_out, msg = t
        self.exit_code = -self.signal if self.signal > 0 else code
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
    """What images.pull returns: reference (as the caller wrote it, "python:3.11", whichever
    registry or mirror served it), config_digest ("sha256:…", the image id), layer_count;
    and ours: name (the canonical name it resolved to), manifest_digest, size."""

    __slots__ = ("reference", "config_digest", "layer_count", "name", "manifest_digest", "size")
    reference: str
    config_digest: str
    layer_count: int
    name: str
    manifest_digest: str
    size: int

    def __init__(self, d: Dict[str, Any], reference: Optional[str] = None):
        self.reference = reference if reference else d["name"]
        self.config_digest = d["id"]
        self.layer_count = d.get("layers", 0)
        self.name = d["name"]
        self.manifest_digest = d["digest"]
        self.size = d["size"]

    def __repr__(self) -> str:
        return (f"ImagePullResult(reference={self.reference!r}, "
                f"config_digest={self.config_digest!r}, layer_count={self.layer_count})")


def rfc3339(unix_seconds: int) -> str:
    """Unix seconds as BoxLite writes times: RFC 3339, UTC, "+00:00"."""
    import datetime
    return datetime.datetime.fromtimestamp(int(unix_seconds), datetime.timezone.utc).isoformat()


class ImageInfo:
    """An image in the runtime's store: reference (its canonical name), repository, tag (""
    when pulled by digest), id ("sha256:…" of the config), cached_at (RFC 3339, as BoxLite),
    size_bytes; and ours: name (= reference), digest (of the manifest), size (= size_bytes),
    cached_at_datetime."""

    __slots__ = ("reference", "repository", "tag", "id", "cached_at", "size_bytes", "name",
                 "digest", "size", "cached_at_datetime")
    reference: str
    repository: str
    tag: str
    id: str
    cached_at: str
    size_bytes: Optional[int]
    name: str
    digest: str
    size: int
    cached_at_datetime: Any

    def __init__(self, d: Dict[str, Any]):
        import datetime
        self.reference = d["name"]
        self.repository = d["repository"]
        self.tag = d["tag"]
        self.id = d["id"]
        self.cached_at = rfc3339(d["cached_at"])
        self.cached_at_datetime = datetime.datetime.fromtimestamp(d["cached_at"],
                                                                  datetime.timezone.utc)
        self.size_bytes = d["size"]
        self.size = d["size"]
        self.digest = d["digest"]
        self.name = d["name"]

    def __repr__(self) -> str:
        return (f"ImageInfo(reference={self.reference!r}, id={self.id!r}, "
                f"cached_at={self.cached_at!r})")


# ---- snapshots, clones, forks, export ----

class SnapshotInfo:
    """A snapshot of a box: id, box_id, name, kind ("disk", or "full": RAM and device state
    too), parent (the id of the snapshot whose disk layer this one rests on, or None), size
    (bytes its files take on the host; also as size_bytes, BoxLite's name), created_at (unix
    seconds, as BoxLite) and created_at_rfc3339."""

    __slots__ = ("id", "box_id", "name", "kind", "parent", "size", "size_bytes",
                 "created_at_rfc3339", "created_at")
    id: str
    box_id: str
    name: str
    kind: str
    parent: Optional[str]
    size: int
    size_bytes: int
    created_at_rfc3339: str
    created_at: int

    def __init__(self, d: Dict[str, Any]):
        import datetime
        self.id = d["id"]
        self.box_id = d["box_id"]
        self.name = d["name"]
        self.kind = d["kind"]
        self.parent = d["parent"] or None
        self.size = d["size"]
        self.size_bytes = d["size"]
        self.created_at_rfc3339 = d["created_at"]
        when = datetime.datetime.fromisoformat(d["created_at"].replace("Z", "+00:00"))
        self.created_at = int(when.timestamp())

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
