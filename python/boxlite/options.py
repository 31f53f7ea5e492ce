"""options.py — the option objects of BoxLite's SDK: Options, ImageRegistry, BoxOptions,
NetworkSpec, CopyOptions. Plain Python; validated here or when a box is created."""
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .errors import ConfigError

__all__ = ["Options", "ImageRegistry", "BoxOptions", "NetworkSpec", "CopyOptions",
           "SnapshotOptions", "CloneOptions", "ExportOptions", "AdvancedBoxOptions",
           "ContainerCapabilities", "SecurityOptions", "HealthCheckOptions", "DEFAULT_IMAGE",
           "BUILTIN_IMAGE"]

#: BoxLite's image when a box names none (and no rootfs_path).
DEFAULT_IMAGE = "alpine:latest"
#: The image built into this library (a busybox rootfs); works without any registry.
BUILTIN_IMAGE = "default"

_HOSTPORT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$|"
                       r"^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


class ImageRegistry:
    """A registry to pull images from. search=True: short names (python:slim) are tried here."""

    def __init__(self, host: str, transport: str = "https", skip_verify: bool = False,
                 search: bool = False, username: Optional[str] = None,
                 password: Optional[str] = None, bearer_token: Optional[str] = None):
        if not host or not str(host).strip():
            raise ConfigError("image registry: host is required")
        if not _HOSTPORT.match(host):
            raise ConfigError(f"image registry: invalid host {host!r}: expected host[:port] "
                             "without a scheme or path")
        if transport not in ("https", "http"):
            raise ConfigError(f"image registry {host}: unsupported registry transport "
                             f"{transport!r} (expected 'https' or 'http')")
        if (username is None) != (password is None):
            raise ConfigError(f"image registry {host}: username and password must be provided "
                             "together")
        self.host = host
        self.transport = transport
        self.skip_verify = bool(skip_verify)
        self.search = bool(search)
        self.username = username
        self.password = password
        self.bearer_token = bearer_token

    def _native(self) -> Tuple[Any, ...]:
        """The tuple boxlite._core.Runtime takes."""
        return (self.host, 1 if self.transport == "http" else 0, self.skip_verify, self.search,
                self.username, self.password, self.bearer_token)

    def __repr__(self) -> str:
        auth = ("basic" if self.username is not None else
                "bearer" if self.bearer_token is not None else "none")
        return (f"ImageRegistry(host={self.host!r}, transport={self.transport!r}, "
                f"skip_verify={self.skip_verify}, search={self.search}, auth={auth})")


class Options:
    """Runtime options: the home directory (None → $BOXLITE_HOME or ~/.boxlite) and the
    image registries."""

    def __init__(self, home_dir: Optional[str] = None,
                 image_registries: Sequence[ImageRegistry] = ()):
        self.home_dir = None if home_dir is None else str(home_dir)
        self.image_registries = list(image_registries or [])
        for r in self.image_registries:
            if not isinstance(r, ImageRegistry):
                raise TypeError("image_registries must hold ImageRegistry objects")

    def __repr__(self) -> str:
        return f"Options(home_dir={self.home_dir!r}, image_registries={self.image_registries!r})"


class NetworkSpec:
    """Networking of a box: mode "enabled" (user-mode NAT, the default) or "disabled"
    (loopback only), and the hosts it may reach. allow_net empty: the internet, never the
    host, link-local or private addresses; else only what it lists: "example.com",
    "*.example.com", "203.0.113.0/24", "198.51.100.7", each with an optional ":PORT"
    (docs/security.md, Network). Checked when the box is created."""

    def __init__(self, mode: str = "enabled", allow_net: Sequence[str] = ()):
        if mode not in ("enabled", "disabled"):
            raise ValueError(f"network mode {mode!r}: expected 'enabled' or 'disabled'")
        self.mode = mode
        self.allow_net = list(allow_net or [])

    def __repr__(self) -> str:
        return f"NetworkSpec(mode={self.mode!r}, allow_net={self.allow_net!r})"


class CopyOptions:
    """Options of copy_in / copy_out."""

    def __init__(self, recursive: bool = True, overwrite: bool = True,
                 follow_symlinks: bool = False, include_parent: bool = True):
        self.recursive = recursive
        self.overwrite = overwrite
        self.follow_symlinks = follow_symlinks
        self.include_parent = include_parent

    def __repr__(self) -> str:
        return (f"CopyOptions(recursive={self.recursive}, overwrite={self.overwrite}, "
                f"follow_symlinks={self.follow_symlinks}, "
                f"include_parent={self.include_parent})")


class SnapshotOptions:
    """Options of box.snapshot.create. BoxLite's is an empty placeholder; ours adds
    memory=True: a full snapshot (RAM and device state too) of a running box, which
    snapshot.restore resumes with its processes running and Box.fork copies."""

    def __init__(self, memory: bool = False):
        self.memory = bool(memory)

    def __repr__(self) -> str:
        return f"SnapshotOptions(memory={self.memory})"


class CloneOptions:
    """Options of Box.clone_box. BoxLite's is an empty placeholder; ours adds snapshot=NAME:
    clone the box as of that snapshot (then the box may be running)."""

    def __init__(self, snapshot: Optional[str] = None):
        self.snapshot = snapshot

    def __repr__(self) -> str:
        return f"CloneOptions(snapshot={self.snapshot!r})"


class ExportOptions:
    """Options of Box.export. BoxLite's is an empty placeholder; ours adds snapshot=NAME:
    export the box as of that snapshot (then the box may be running)."""

    def __init__(self, snapshot: Optional[str] = None):
        self.snapshot = snapshot

    def __repr__(self) -> str:
        return f"ExportOptions(snapshot={self.snapshot!r})"


EnvLike = Union[None, Dict[str, str], Sequence[Tuple[str, str]]]


def env_pairs(env: EnvLike) -> List[Tuple[str, str]]:
    """[(key, value)] from a list of pairs or a dict."""
    if not env:
        return []
    items = env.items() if isinstance(env, dict) else env
    out = []
    for item in items:
        try:
            k, v = item
        except (TypeError, ValueError):
            raise TypeError(f"env entries must be (key, value) pairs, got {item!r}") from None
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"env keys and values must be str, got {item!r}")
        if not k or "=" in k:
            raise ValueError(f"invalid environment variable name {k!r}")
        out.append((k, v))
    return out


def _volume(v: Any) -> Tuple[str, str, bool]:
    if isinstance(v, dict):
        host = v.get("host", v.get("host_path"))
        guest = v.get("guest", v.get("guest_path"))
        ro = bool(v.get("read_only", v.get("ro", False)))
    elif isinstance(v, (tuple, list)) and len(v) in (2, 3):
        host, guest, ro = v[0], v[1], bool(v[2]) if len(v) == 3 else False
    else:
        raise TypeError(f"volume {v!r}: expected (host, guest[, read_only]) or a dict")
    if not host or not guest:
        raise ValueError(f"volume {v!r}: host and guest paths are required")
    return str(host), str(guest), ro


def _port(p: Any) -> Tuple[int, int, str, Optional[str]]:
    if isinstance(p, dict):
        host = p.get("host", p.get("host_port"))
        guest = p.get("guest", p.get("guest_port"))
        proto = p.get("protocol", p.get("proto", "tcp"))
        ip = p.get("host_ip")
    elif isinstance(p, (tuple, list)) and 2 <= len(p) <= 4:
        host, guest = p[0], p[1]
        proto = p[2] if len(p) > 2 else "tcp"
        ip = p[3] if len(p) > 3 else None
    else:
        raise TypeError(f"port {p!r}: expected (host, guest[, proto[, host_ip]]) or a dict")
    if proto not in ("tcp", "udp"):
        raise ValueError(f"port {p!r}: protocol must be 'tcp' or 'udp'")
    return int(host), int(guest), proto, ip


class ContainerCapabilities:
    """Linux capabilities added to / dropped from the box's process baseline (BoxLite's).
    This build cannot change the guest's capability set: a non-empty policy is refused at
    create (docs/python.md)."""

    __slots__ = ("add", "drop")
    add: List[str]
    drop: List[str]

    def __init__(self, add: Sequence[str] = (), drop: Sequence[str] = ()):
        self.add, self.drop = list(add), list(drop)

    def __repr__(self) -> str:
        return f"ContainerCapabilities(add={self.add!r}, drop={self.drop!r})"


class SecurityOptions:
    """BoxLite's isolation settings of the host-side process. Here the jail
    (docs/security.md) always applies; resource limits (max_*) cannot be set and are refused
    at create."""

    __slots__ = ("jailer_enabled", "seccomp_enabled", "max_open_files", "max_file_size",
                 "max_processes", "max_memory", "max_cpu_time", "network_enabled", "close_fds")
    jailer_enabled: bool
    seccomp_enabled: bool
    max_open_files: Optional[int]
    max_file_size: Optional[int]
    max_processes: Optional[int]
    max_memory: Optional[int]
    max_cpu_time: Optional[int]
    network_enabled: bool
    close_fds: bool

    def __init__(self, jailer_enabled: bool = False, seccomp_enabled: bool = False,
                 max_open_files: Optional[int] = None, max_file_size: Optional[int] = None,
                 max_processes: Optional[int] = None, max_memory: Optional[int] = None,
                 max_cpu_time: Optional[int] = None, network_enabled: bool = True,
                 close_fds: bool = True):
        self.jailer_enabled, self.seccomp_enabled = bool(jailer_enabled), bool(seccomp_enabled)
        self.max_open_files, self.max_file_size = max_open_files, max_file_size
        self.max_processes, self.max_memory = max_processes, max_memory
        self.max_cpu_time = max_cpu_time
        self.network_enabled, self.close_fds = bool(network_enabled), bool(close_fds)

    @staticmethod
    def development() -> "SecurityOptions":
        return SecurityOptions(close_fds=False)

    @staticmethod
    def standard() -> "SecurityOptions":
        return SecurityOptions(jailer_enabled=True, seccomp_enabled=True)

    @staticmethod
    def maximum() -> "SecurityOptions":
        return SecurityOptions(jailer_enabled=True, seccomp_enabled=True, max_open_files=1024,
                               max_file_size=1 << 30, max_processes=100)

    def _limits(self) -> List[str]:
        return [k for k in ("max_open_files", "max_file_size", "max_processes", "max_memory",
                            "max_cpu_time") if getattr(self, k) is not None]

    def __repr__(self) -> str:
        return (f"SecurityOptions(jailer_enabled={self.jailer_enabled}, "
                f"seccomp_enabled={self.seccomp_enabled}, "
                f"max_open_files={self.max_open_files})")


class HealthCheckOptions:
    """BoxLite's periodic agent health check (seconds). No health checker runs here: refused
    at create (docs/python.md)."""

    __slots__ = ("interval", "timeout", "retries", "start_period")
    interval: int
    timeout: int
    retries: int
    start_period: int

    def __init__(self, interval: int = 30, timeout: int = 10, retries: int = 3,
                 start_period: int = 60):
        self.interval, self.timeout = interval, timeout
        self.retries, self.start_period = retries, start_period

    def __repr__(self) -> str:
        return (f"HealthCheckOptions(interval={self.interval}s, timeout={self.timeout}s, "
                f"retries={self.retries}, start_period={self.start_period}s)")


class AdvancedBoxOptions:
    """Expert options of BoxOptions(advanced=...): security, health_check, capabilities."""

    __slots__ = ("security", "health_check", "capabilities")
    security: Optional[SecurityOptions]
    health_check: Optional[HealthCheckOptions]
    capabilities: Optional[ContainerCapabilities]

    def __init__(self, security: Optional[SecurityOptions] = None,
                 health_check: Optional[HealthCheckOptions] = None,
                 capabilities: Optional[ContainerCapabilities] = None):
        for name, v, cls in (("security", security, SecurityOptions),
                             ("health_check", health_check, HealthCheckOptions),
                             ("capabilities", capabilities, ContainerCapabilities)):
            if v is not None and not isinstance(v, cls):
                raise TypeError(f"{name} must be a boxlite.{cls.__name__}")
        self.security, self.health_check = security, health_check
        self.capabilities = capabilities

    def _unsupported(self) -> List[str]:
        """What of these options this build cannot apply (refused at create)."""
        out = []
        if self.security is not None:
            out += [f"security.{k}" for k in self.security._limits()]
        if self.health_check is not None:
            out.append("health_check")
        if self.capabilities is not None and (self.capabilities.add or self.capabilities.drop):
            out.append("capabilities")
        return out

    def __repr__(self) -> str:
        return (f"AdvancedBoxOptions(security={self.security!r}, "
                f"health_check={self.health_check!r}, capabilities={self.capabilities!r})")


class Secret:
    """A secret that never enters the box: the box sees only placeholder (in its env as
    NAME=placeholder); the box's monitor puts value in its place in the request line and
    headers of outbound HTTP(S) requests to hosts (empty: any host). See docs/security.md."""

    __slots__ = ("name", "value", "hosts", "placeholder")
    name: str
    value: str
    hosts: List[str]
    placeholder: str

    def __init__(self, name: str, value: str, hosts: Sequence[str] = (),
                 placeholder: Optional[str] = None):
        if not isinstance(name, str) or not name or not isinstance(value, str) or not value:
            raise ValueError("Secret needs a name and a value (non-empty str)")
        if isinstance(hosts, str):
            raise TypeError("hosts must be a list of str")
        self.name = name
        self.value = value
        self.hosts = list(hosts or [])
        self.placeholder = placeholder if placeholder is not None else f"<BOXLITE_SECRET:{name}>"

    def __repr__(self) -> str:  # never the value
        return (f"Secret(name={self.name!r}, value='***', hosts={self.hosts!r}, "
                f"placeholder={self.placeholder!r})")


class BoxOptions:
    """How to create a box. No image and no rootfs_path → "alpine:latest" (BoxLite's
    default); image="default" is the image built into this library."""

    def __init__(self, image: Optional[str] = None, rootfs_path: Optional[str] = None,
                 cpus: Optional[int] = None, memory_mib: Optional[int] = None,
                 disk_size_gb: Optional[int] = None, working_dir: Optional[str] = None,
                 env: EnvLike = (), volumes: Sequence[Any] = (),
                 network: Optional[NetworkSpec] = None, ports: Sequence[Any] = (),
                 auto_remove: Optional[bool] = None, auto_pause: Optional[bool] = None,
                 auto_delete: Optional[int] = None, auto_resume: Optional[bool] = None,
                 detach: Optional[bool] = None, entrypoint: Optional[Sequence[str]] = None,
                 cmd: Optional[Sequence[str]] = None, user: Optional[str] = None,
                 advanced: Any = None, secrets: Sequence[Any] = ()):
        if image is None and rootfs_path is None:
            image = DEFAULT_IMAGE
        # auto_remove with detach is refused at create() (RuntimeError), as BoxLite does:
        # auto_delete=0 may still override it there
        if network is not None and not isinstance(network, NetworkSpec):
            raise TypeError("network must be a NetworkSpec")
        if advanced is not None and not isinstance(advanced, AdvancedBoxOptions):
            raise TypeError("advanced must be a boxlite.AdvancedBoxOptions")
        for name, v in (("cpus", cpus), ("memory_mib", memory_mib),
                        ("disk_size_gb", disk_size_gb)):
            if v is not None and (not isinstance(v, int) or v < 0):
                raise ValueError(f"{name} must be a non-negative int, got {v!r}")
        self.image = image
        self.rootfs_path = rootfs_path
        self.cpus = cpus
        self.memory_mib = memory_mib
        self.disk_size_gb = disk_size_gb
        self.working_dir = working_dir
        self.env = env_pairs(env)
        self._volumes = [_volume(v) for v in (volumes or [])]
        self.network = network
        self._ports = [_port(p) for p in (ports or [])]
        if auto_delete is not None and (isinstance(auto_delete, bool) or
                                        not isinstance(auto_delete, int) or auto_delete < 0):
            raise TypeError(f"auto_delete must be a non-negative int (seconds), "
                            f"got {auto_delete!r}")
        # As BoxLite's: None keeps the default, resolved when the box is created (auto_remove
        # True, detach False; auto_delete, when set, overrides auto_remove): see box_kwargs.
        self.auto_remove = auto_remove
        self.auto_pause = auto_pause
        self.auto_delete = auto_delete
        self.auto_resume = auto_resume
        self.detach = detach
        self.entrypoint = list(entrypoint) if entrypoint is not None else None
        self.cmd = list(cmd) if cmd is not None else None
        self.user = user
        self.advanced = advanced
        self.secrets = list(secrets or [])

    def __repr__(self) -> str:
        return (f"BoxOptions(image={self.image!r}, cpus={self.cpus}, "
                f"memory_mib={self.memory_mib}, disk_size_gb={self.disk_size_gb}, "
                f"auto_remove={self.auto_remove}, detach={self.detach})")
