"""sync_api — the synchronous twins of the async API, for plain scripts with no event loop.
They call the same native objects directly (the calls block with the GIL released)."""
import os
import signal as _signal
from typing import Any, Dict, Iterator, List, Optional, Tuple

from .. import _common as C
from .. import _core
from .._async import Box, Boxlite
from ..codebox import PYTHON, pip_argv, pip_result
from ..exec import ExecResult, raise_if_timed_out
from ..network import SyncBoxTunnel, SyncNetworkHandle
from ..options import BoxOptions, CopyOptions, Options

__all__ = ["SyncBoxlite", "SyncBox", "SyncExecution", "SyncExecStdout", "SyncExecStderr",
           "SyncExecStdin", "SyncImageHandle", "SyncSnapshotHandle", "SyncSimpleBox",
           "SyncCodeBox"]


def _no_loop(what: str) -> None:
    import asyncio
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"Cannot use {what} inside an asyncio loop: use the async API "
                       "(Boxlite, SimpleBox, CodeBox) instead.")


class SyncImageHandle:
    def __init__(self, runtime: "SyncBoxlite"):
        self._runtime = runtime

    def pull(self, reference: str) -> "C.ImagePullResult":
        return C.ImagePullResult(self._runtime._require()._core.image_pull(reference), reference)

    def list(self) -> "List[C.ImageInfo]":
        return [C.ImageInfo(d) for d in self._runtime._require()._core.image_list()]


class SyncBoxlite:
    """with SyncBoxlite.default() as rt: box = rt.create(BoxOptions(image="default"))"""

    def __init__(self, options: Optional[Options] = None):
        self._boxlite = Boxlite(options)
        self._started = False

    @staticmethod
    def default() -> "SyncBoxlite":
        inst = object.__new__(SyncBoxlite)
        inst._boxlite = Boxlite.default()
        inst._started = False
        return inst

    @staticmethod
    def rest(options: Any) -> "SyncBoxlite":
        """A SyncBoxlite over a Box API server (BoxliteRestOptions): the same SyncBox,
        SyncExecution and SyncSimpleBox, on boxlite.rest's blocking cores."""
        from ..rest import RestBoxlite
        inst = object.__new__(SyncBoxlite)
        inst._boxlite = RestBoxlite(options)
        inst._started = False
        return inst

    def start(self) -> "SyncBoxlite":
        _no_loop("SyncBoxlite")
        self._started = True
        return self

    def stop(self) -> None:
        self._started = False

    def __enter__(self) -> "SyncBoxlite":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _require(self) -> Boxlite:
        if not self._started:
            raise RuntimeError("SyncBoxlite not started. Use 'with SyncBoxlite(...) as "
                               "runtime:' or call 'SyncBoxlite.start()' first.")
        return self._boxlite

    @property
    def runtime(self) -> Boxlite:
        return self._boxlite

    @property
    def images(self) -> SyncImageHandle:
        self._require()
        return SyncImageHandle(self)

    def create(self, options: Optional[BoxOptions] = None,
               name: Optional[str] = None) -> "SyncBox":
        return SyncBox(self, self._require()._create_sync(options, name))

    def get(self, id_or_name: str) -> "Optional[SyncBox]":
        box = self._require()._get_sync(id_or_name)
        return None if box is None else SyncBox(self, box)

    def get_info(self, id_or_name: str) -> Any:
        return self._require()._get_info_sync(id_or_name)

    def list_info(self) -> List[Any]:
        return [C.BoxInfo(d) for d in self._require()._core.list()]

    def get_or_create(self, options: Optional[BoxOptions] = None,
                      name: Optional[str] = None) -> "Tuple[SyncBox, bool]":
        if name is not None:
            box = self.get(name)
            if box is not None:
                return box, False
        return self.create(options, name), True

    def remove(self, id_or_name: str, force: bool = False) -> None:
        self._require()._remove_sync(id_or_name, force)

    def metrics(self) -> Any:
        return self._require()._metrics_sync()

    def shutdown(self, timeout: Optional[float] = None) -> None:
        self._boxlite._core.close(Boxlite._timeout_ms(timeout))

    def import_box(self, path: str, name: Optional[str] = None, *,
                   untrusted: bool = False) -> "SyncBox":
        """A new (stopped) box from a .boxlite archive (see Boxlite.import_box)."""
        return SyncBox(self, self._require()._import_box_sync(path, name, untrusted))

    def __repr__(self) -> str:
        return f"SyncBoxlite({self._boxlite!r})"


class _SyncStream:
    def __init__(self, ex: "SyncExecution", mask: int):
        self._ex = ex
        self._mask = mask

    def __iter__(self) -> Iterator[str]:
        split = C.LineSplitter()
        while True:
            _, data = self._ex._core.read(self._mask, -1)
            if not data:
                break
            self._ex._box._box._counters["received"] += len(data)
            yield from split.feed(data)
        yield from split.end()


class SyncExecStdout(_SyncStream):
    pass


class SyncExecStderr(_SyncStream):
    pass


class SyncExecStdin:
    def __init__(self, ex: "SyncExecution"):
        self._ex = ex

    def send_input(self, data: bytes) -> None:
        if isinstance(data, str):
            data = data.encode()
        self._ex._core.write(bytes(data))

    def close(self) -> None:
        self._ex._core.close_stdin()


class SyncExecution:
    def __init__(self, box: "SyncBox", core_exec: "_core.Exec"):
        self._box = box
        self._core = core_exec
        self._id = C.next_exec_id()
        self._taken: set = set()
        self._stdin: Optional[SyncExecStdin] = None

    @property
    def id(self) -> str:
        return self._id

    def _take(self, what: str) -> None:
        if what in self._taken:
            raise RuntimeError(f"{what} stream not available (already taken)")
        self._taken.add(what)

    def stdout(self) -> SyncExecStdout:
        self._take("stdout")
        return SyncExecStdout(self, _core.STDOUT)

    def stderr(self) -> SyncExecStderr:
        self._take("stderr")
        return SyncExecStderr(self, _core.STDERR)

    def stdin(self) -> SyncExecStdin:
        """The process's stdin: send_input(bytes) and close() (a method, as in BoxLite)."""
        if self._stdin is None:
            self._stdin = SyncExecStdin(self)
        return self._stdin

    def wait(self) -> C.NativeExecResult:
        return C.NativeExecResult(self._core.wait(-1))

    def kill(self) -> None:
        self._core.signal(_signal.SIGKILL)

    def signal(self, signo: int) -> None:
        self._core.signal(int(signo))

    def resize_tty(self, rows: int, cols: int) -> None:
        self._core.resize(rows, cols)


class SyncSnapshotHandle:
    """box.snapshot of a SyncBox: create, list, get, restore, remove (see SnapshotHandle)."""

    def __init__(self, box: "SyncBox"):
        self._h = box._box.snapshot

    def create(self, name: str, *, options: Any = None,
               memory: Optional[bool] = None) -> "C.SnapshotInfo":
        return self._h._create_sync(name, C.snapshot_memory(options, memory))

    def list(self) -> "List[C.SnapshotInfo]":
        return [C.SnapshotInfo(d) for d in self._h._box._core.snapshot_list()]

    def get(self, name: str) -> "Optional[C.SnapshotInfo]":
        return self._h._get_sync(name)

    def restore(self, name: str, *, detach: bool = False) -> None:
        self._h._box._core.snapshot_restore(name, detach)

    def remove(self, name: str) -> None:
        self._h._box._core.snapshot_remove(name)


class SyncBox:
    def __init__(self, runtime: SyncBoxlite, box: Box):
        self._runtime = runtime
        self._box = box
        self.snapshot = SyncSnapshotHandle(self)

    @property
    def id(self) -> str:
        return self._box.id

    @property
    def name(self) -> Optional[str]:
        return self._box.name

    def start(self) -> None:
        self._box._start_sync()

    def stop(self) -> None:
        self._box._core.stop()  # BOXLITE_STOP_TIMEOUT_DEFAULT_MS

    def info(self) -> Any:
        return self._box.info()

    def metrics(self) -> Any:
        return self._box._metrics_sync()

    @property
    def network(self) -> SyncNetworkHandle:
        """The box's network handle: `box.network.tunnel(port).connect()`."""
        return SyncNetworkHandle(lambda: self._box)

    def tunnel(self, port: int) -> SyncBoxTunnel:
        return self.network.tunnel(port)

    def exec(self, cmd: str, args: Optional[List[str]] = None, env: Any = None,
             tty: bool = False, user: Optional[str] = None,
             timeout_secs: Optional[float] = None, cwd: Optional[str] = None) -> SyncExecution:
        kw = C.exec_kwargs(cmd, args, env, tty, user, timeout_secs, cwd)
        return SyncExecution(self, self._box._exec_sync(kw))

    def copy_in(self, host_path: str, container_dest: str,
                copy_options: Optional[CopyOptions] = None) -> None:
        self._box._core.copy_in(os.fspath(host_path), container_dest,
                                **C.copy_kwargs(copy_options))

    def copy_out(self, container_src: str, host_dest: str,
                 copy_options: Optional[CopyOptions] = None) -> None:
        self._box._core.copy_out(container_src, os.fspath(host_dest),
                                 **C.copy_kwargs(copy_options))

    def clone_box(self, *, options: Any = None, name: Optional[str] = None) -> "SyncBox":
        return SyncBox(self._runtime, self._box._clone_sync(options, name))

    def fork(self, snapshot: str, count: int = 1, *, name: Optional[str] = None,
             detach: bool = False) -> "List[SyncBox]":
        return [SyncBox(self._runtime, b)
                for b in self._box._fork_sync(snapshot, count, name, detach)]

    def export(self, *, options: Any = None, dest: str) -> str:
        return self._box._export_sync(options, dest)

    def __enter__(self) -> "SyncBox":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SyncBox(id={self.id!r}, name={self.name!r})"


class SyncSimpleBox:
    """with SyncSimpleBox(image="default") as box: print(box.exec("echo", "hi").stdout)"""

    def __init__(self, image: Optional[str] = None, rootfs_path: Optional[str] = None,
                 memory_mib: Optional[int] = None, cpus: Optional[int] = None,
                 runtime: Optional[SyncBoxlite] = None, name: Optional[str] = None,
                 auto_remove: bool = True, reuse_existing: bool = False, **box_options: Any):
        if not image and not rootfs_path:
            raise ValueError("Either 'image' or 'rootfs_path' must be provided")
        self._runtime = runtime
        self._box_options = BoxOptions(image=image, rootfs_path=rootfs_path, cpus=cpus,
                                       memory_mib=memory_mib, auto_remove=auto_remove,
                                       **box_options)
        self._name = name
        self._reuse_existing = reuse_existing
        self._box: Optional[SyncBox] = None
        self._created: Optional[bool] = None

    def __enter__(self) -> "SyncSimpleBox":
        _no_loop("SyncSimpleBox")
        if self._box is not None:
            return self
        if self._runtime is None:
            self._runtime = SyncBoxlite.default().start()
        if self._reuse_existing:
            box, self._created = self._runtime.get_or_create(self._box_options, self._name)
        else:
            box, self._created = self._runtime.create(self._box_options, self._name), True
        box.start()
        self._box = box
        return self

    def start(self) -> "SyncSimpleBox":
        return self.__enter__()

    def __exit__(self, *exc: Any) -> None:
        if self._box is not None:
            self._box.stop()
            self._box = None

    def stop(self) -> None:
        self.__exit__(None, None, None)

    def _require(self) -> SyncBox:
        if self._box is None:
            raise RuntimeError("Box not started. Use 'with SyncSimpleBox(...) as box:' or "
                               "call 'box.start()' first.")
        return self._box

    @property
    def id(self) -> str:
        return self._require().id

    @property
    def name(self) -> Optional[str]:
        return self._require().name

    @property
    def created(self) -> Optional[bool]:
        return self._created

    def info(self) -> Any:
        return self._require().info()

    def metrics(self) -> Any:
        return self._require().metrics()

    @property
    def network(self) -> SyncNetworkHandle:
        return SyncNetworkHandle(lambda: self._require()._box)

    def tunnel(self, port: int) -> SyncBoxTunnel:
        return self.network.tunnel(port)

    def exec(self, cmd: str, *args: str, env: Optional[Dict[str, str]] = None,
             user: Optional[str] = None, timeout: Optional[float] = None,
             cwd: Optional[str] = None) -> ExecResult:
        box = self._require()
        ex = box.exec(cmd, list(args), env, user=user, timeout_secs=timeout, cwd=cwd)
        out, err = C.collect(ex._core)
        res = ex.wait()
        raise_if_timed_out(res.timed_out, cmd, args, timeout)
        return ExecResult(exit_code=res.exit_code,
                          stdout=out.decode("utf-8", errors="replace"),
                          stderr=err.decode("utf-8", errors="replace"),
                          error_message=res.error_message, timed_out=res.timed_out)

    def copy_in(self, host_path: str, container_dest: str, *, overwrite: bool = True,
                follow_symlinks: bool = False, include_parent: bool = True) -> None:
        opts = CopyOptions(True, overwrite, follow_symlinks, include_parent)
        self._require().copy_in(host_path, container_dest, opts)

    def copy_out(self, container_src: str, host_dest: str, *, overwrite: bool = True,
                 follow_symlinks: bool = False, include_parent: bool = True) -> None:
        opts = CopyOptions(True, overwrite, follow_symlinks, include_parent)
        self._require().copy_out(container_src, host_dest, opts)


class SyncCodeBox(SyncSimpleBox):
    def __init__(self, image: str = "python:slim", memory_mib: Optional[int] = None,
                 cpus: Optional[int] = None, runtime: Optional[SyncBoxlite] = None,
                 **kwargs: Any):
        super().__init__(image=image, memory_mib=memory_mib, cpus=cpus, runtime=runtime,
                         **kwargs)

    def run(self, code: str, timeout: Optional[float] = None) -> str:
        return self.exec(PYTHON, "-c", code, timeout=timeout).stdout

    def run_script(self, script_path: str) -> str:
        with open(script_path, "r", encoding="utf-8") as f:
            return self.run(f.read())

    def install_package(self, package: str) -> str:
        return self.install_packages(package)

    def install_packages(self, *packages: str) -> str:
        argv = pip_argv(packages)
        return pip_result(argv, self.exec(*argv))


from ._skillbox import SyncSkillBox  # noqa: E402 - it builds on SyncSimpleBox above

__all__.append("SyncSkillBox")
