"""_async.py — the async API: Boxlite (runtime), ImageHandle, Box, Execution and its
streams. Each blocking native call runs on a worker thread with the GIL released, except an
execution's output, exit and stdin: those wait on its fd in the event loop (loop.add_reader on
boxlite_exec_fd, woken by boxlite_exec_timeout's deadline too) and then take what is there
with the non-blocking read(mask, 0) / wait(0) / write_some, so no thread waits per execution."""
import asyncio
import collections
import os
import signal as _signal
import threading
import weakref
from typing import Any, AsyncIterator, List, Optional, Tuple

from . import _common as C
from . import _core
from .errors import InvalidStateError
from .network import BoxNetwork
from .options import BoxOptions, CloneOptions, CopyOptions, ExportOptions, Options

__all__ = ["Boxlite", "ImageHandle", "Box", "SnapshotHandle", "Execution", "ExecStdout",
           "ExecStderr", "ExecStdin"]


class ImageHandle:
    """runtime.images: pull and list images (the runtime's registries are used for short
    names; see docs/images.md)."""

    def __init__(self, runtime: "Boxlite"):
        self._runtime = runtime

    async def pull(self, reference: str) -> "C.ImagePullResult":
        """Pull an image into the store (a cached image is only re-resolved)."""
        return C.ImagePullResult(await C.call(self._runtime._core.image_pull, reference),
                                 reference)

    async def list(self) -> "List[C.ImageInfo]":
        """Every image in the store, sorted by name."""
        return [C.ImageInfo(d) for d in await C.call(self._runtime._core.image_list)]


class Boxlite:
    """A runtime: one home directory of boxes. Boxlite(Options(...)) or Boxlite.default()."""

    _default: "Optional[Boxlite]" = None
    _default_options: Optional[Options] = None
    _default_lock = threading.Lock()

    def __init__(self, options: Optional[Options] = None):
        options = options if options is not None else Options()
        if not isinstance(options, Options):
            raise TypeError("options must be a boxlite.Options")
        self._options = options
        self._core = _core.Runtime(options.home_dir,
                                   [r._native() for r in options.image_registries] or None)
        C._open_runtimes.add(self._core)
        self._boxes: "weakref.WeakValueDictionary[str, Box]" = weakref.WeakValueDictionary()
        self._counters = C.new_runtime_counters()
        self._lock = threading.Lock()
        self._images = ImageHandle(self)

    @property
    def images(self) -> ImageHandle:
        """The runtime's images: pull and list."""
        return self._images

    @staticmethod
    def default() -> "Boxlite":
        """The process's default runtime ($BOXLITE_HOME or ~/.boxlite), opened on first use
        (again after a shutdown)."""
        with Boxlite._default_lock:
            rt = Boxlite._default
            if rt is None or rt._core.closed:
                rt = Boxlite(Boxlite._default_options)
                Boxlite._default = rt
            return rt

    @staticmethod
    def init_default(options: Options) -> None:
        """Options for the default runtime; call before its first use."""
        with Boxlite._default_lock:
            if Boxlite._default is not None and not Boxlite._default._core.closed:
                raise RuntimeError("the default runtime is already open")
            Boxlite._default_options = options

    @property
    def home_dir(self) -> str:
        return self._core.home

    def _check_open(self) -> None:
        if self._core.closed:
            raise InvalidStateError("the boxlite runtime has been shut down")

    def _wrap(self, core_box: "_core.Box") -> "Box":
        with self._lock:
            box = self._boxes.get(core_box.id)
            if box is not None and not box._core.closed:
                extra = core_box
            else:
                box = Box(self, core_box)
                self._boxes[core_box.id] = box
                extra = None
        if extra is not None:
            extra.close(-2)
        return box

    def _create_sync(self, options: Optional[BoxOptions], name: Optional[str]) -> "Box":
        C.create_kwargs(options, name)  # validate before any import
        try:
            imported = None
            if options is not None and options.rootfs_path is not None:
                # an OCI layout, docker-save tarball or plain rootfs: imported into the store
                # (its base filesystem is cached by config digest), then used by name
                path = os.fspath(options.rootfs_path)
                imported = self._core.image_import(path, C.rootfs_image_name(path))["name"]
            core_box = self._core.create(**C.create_kwargs(options, name, imported))
        except Exception:
            self._counters["failed"] += 1
            raise
        self._counters["created"] += 1
        return self._wrap(core_box)

    def _get_sync(self, id_or_name: str) -> "Optional[Box]":
        core_box = self._core.get(id_or_name)
        return None if core_box is None else self._wrap(core_box)

    def _get_info_sync(self, id_or_name: str) -> "Optional[C.BoxInfo]":
        box = self._get_sync(id_or_name)
        return None if box is None else C.BoxInfo(box._core.info())

    def _remove_sync(self, id_or_name: str, force: bool) -> None:
        box = self._get_sync(id_or_name)
        if box is None:
            self._core.remove(id_or_name, force)  # raises the library's not-found error
            return
        box._core.remove(force)

    def _metrics_sync(self) -> "C.RuntimeMetrics":
        running = sum(1 for d in self._core.list() if d["state"] == "running")
        return C.RuntimeMetrics(self._counters, running)

    @staticmethod
    def _timeout_ms(timeout: Optional[float]) -> int:
        if timeout is None:
            return -1  # the library's default (10 s)
        if timeout < 0:
            return 3600 * 1000
        return int(timeout * 1000)

    async def create(self, options: Optional[BoxOptions] = None,
                     name: Optional[str] = None) -> "Box":
        """Create a box (not yet running)."""
        return await C.call(self._create_sync, options, name)

    async def get(self, id_or_name: str) -> "Optional[Box]":
        """The box with this id, id prefix or name, or None."""
        return await C.call(self._get_sync, id_or_name)

    async def get_info(self, id_or_name: str) -> "Optional[C.BoxInfo]":
        return await C.call(self._get_info_sync, id_or_name)

    async def list_info(self) -> "List[C.BoxInfo]":
        """Every box of this runtime, newest first."""
        return [C.BoxInfo(d) for d in await C.call(self._core.list)]

    async def get_or_create(self, options: Optional[BoxOptions] = None,
                            name: Optional[str] = None) -> "Tuple[Box, bool]":
        if name is not None:
            box = await self.get(name)
            if box is not None:
                return box, False
        return await self.create(options, name=name), True

    async def remove(self, id_or_name: str, force: bool = False) -> None:
        """Delete a box and its disk; a running box needs force=True."""
        await C.call(self._remove_sync, id_or_name, force)

    async def metrics(self) -> "C.RuntimeMetrics":
        return await C.call(self._metrics_sync)

    async def shutdown(self, timeout: Optional[float] = None) -> None:
        """Stop the boxes this runtime started (timeout seconds each before they are killed;
        None → 10 s) and close it. Later calls raise RuntimeError ("... shut down")."""
        await C.call(self._core.close, self._timeout_ms(timeout))

    def _import_box_sync(self, path: Any, name: Optional[str], untrusted: bool) -> "Box":
        box = self._wrap(self._core.import_box(os.fspath(path), name, bool(untrusted)))
        self._counters["created"] += 1
        return box

    async def import_box(self, path: str, name: Optional[str] = None, *,
                         untrusted: bool = False) -> "Box":
        """A new (stopped) box from a .boxlite archive written by Box.export. The archive is
        checked before anything lands: its members, sizes, checksums, and that the disk is a
        standalone qcow2; untrusted=True adds a consistency check of the disk image."""
        return await C.call(self._import_box_sync, path, name, untrusted)

    def close(self) -> None:
        """Synchronous shutdown."""
        self._core.close(-1)

    def __enter__(self) -> "Boxlite":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "Boxlite":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()

    def __repr__(self) -> str:
        state = "shut down" if self._core.closed else self._core.home
        return f"Boxlite({state})"


class SnapshotHandle:
    """box.snapshot: create, list, get, restore, remove. A snapshot is a named, frozen copy of
    the box's disk (kind "disk"), or of its disk, RAM and device state (kind "full")."""

    def __init__(self, box: "Box"):
        self._box = box

    def _create_sync(self, name: str, memory: bool) -> "C.SnapshotInfo":
        return C.SnapshotInfo(self._box._core.snapshot_create(name, memory))

    def _get_sync(self, name: str) -> "Optional[C.SnapshotInfo]":
        for d in self._box._core.snapshot_list():
            if d["name"] == name or d["id"] == name:
                return C.SnapshotInfo(d)
        return None

    async def create(self, name: str, *, options: Any = None,
                     memory: Optional[bool] = None) -> "C.SnapshotInfo":
        """Snapshot the box as name (1-64 of [A-Za-z0-9_.-]). Running or stopped; a running
        box's filesystems are frozen for the instant of the cut. memory=True (or
        SnapshotOptions(memory=True); our extension) also saves its RAM and device state:
        the box must be running, and is paused while they are written."""
        full = C.snapshot_memory(options, memory)
        return await C.call(self._create_sync, name, full)

    async def list(self) -> "List[C.SnapshotInfo]":
        """The box's snapshots, oldest first."""
        return [C.SnapshotInfo(d) for d in await C.call(self._box._core.snapshot_list)]

    async def get(self, name: str) -> "Optional[C.SnapshotInfo]":
        """The snapshot with this name (or id), or None."""
        return await C.call(self._get_sync, name)

    async def restore(self, name: str, *, detach: bool = False) -> None:
        """Bring the (stopped) box's disk back to snapshot name; changes since are dropped.
        A full snapshot also resumes the box with its processes running (detach=True: the
        resumed box outlives this process)."""
        await C.call(lambda: self._box._core.snapshot_restore(name, detach))

    async def remove(self, name: str) -> None:
        """Delete snapshot name; the box must be stopped, and no fork may rest on it."""
        await C.call(self._box._core.snapshot_remove, name)

    def __repr__(self) -> str:
        return f"SnapshotHandle(box_id={self._box.id!r})"


class Box:
    """A box. `async with box:` starts it and stops it on exit."""

    def __init__(self, runtime: Boxlite, core_box: "_core.Box"):
        self._runtime = runtime
        self._core = core_box
        self._counters = C.new_box_counters()
        self.snapshot = SnapshotHandle(self)
        self.network = BoxNetwork(self)  # network.tunnel(port)

    @property
    def id(self) -> str:
        return self._core.id

    @property
    def name(self) -> Optional[str]:
        return self._core.name or None

    def _start_sync(self) -> None:
        self._core.start()

    def _exec_sync(self, kw: dict) -> "Any":
        self._counters["commands"] += 1
        self._runtime._counters["commands"] += 1
        try:
            return self._core.exec(**kw)
        except Exception:
            self._counters["errors"] += 1
            self._runtime._counters["errors"] += 1
            raise

    def _metrics_sync(self) -> "C.BoxMetrics":
        info = self._core.info()
        stats = self._core.stats() if info["state"] == "running" else None
        return C.BoxMetrics(self._counters, stats, self._core.timing())

    async def start(self) -> None:
        await C.call(self._start_sync)

    async def stop(self) -> None:
        await C.call(self._core.stop)  # BOXLITE_STOP_TIMEOUT_DEFAULT_MS

    def info(self) -> "C.BoxInfo":
        """The box's info; usable with or without await."""
        return C.BoxInfo(self._core.info())

    async def metrics(self) -> "C.BoxMetrics":
        return await C.call(self._metrics_sync)

    async def exec(self, command: str, args: Optional[List[str]] = None, env: Any = None,
                   tty: bool = False, user: Optional[str] = None,
                   timeout_secs: Optional[float] = None,
                   cwd: Optional[str] = None) -> "Execution":
        """Start a process (booting the box first if needed)."""
        kw = C.exec_kwargs(command, args, env, tty, user, timeout_secs, cwd)
        return Execution(self, await C.call(self._exec_sync, kw), tty)

    async def copy_in(self, host_path: str, container_dest: str,
                      copy_options: Optional[CopyOptions] = None) -> None:
        """Copy a host file or tree into the box (booting it when needed), like docker cp:
        into container_dest when it is an existing directory, else as container_dest."""
        kw = C.copy_kwargs(copy_options)
        await C.call(lambda: self._core.copy_in(os.fspath(host_path), container_dest, **kw))

    async def copy_out(self, container_src: str, host_dest: str,
                       copy_options: Optional[CopyOptions] = None) -> None:
        """Copy a file or tree out of the box to the host, with the same rules; the box's
        archive is untrusted (nothing is written outside host_dest)."""
        kw = C.copy_kwargs(copy_options)
        await C.call(lambda: self._core.copy_out(container_src, os.fspath(host_dest), **kw))

    def _clone_sync(self, options: Any, name: Optional[str]) -> "Box":
        snapshot = C.option_snapshot(options, CloneOptions)
        box = self._runtime._wrap(self._core.clone(name, snapshot))
        self._runtime._counters["created"] += 1
        return box

    def _fork_sync(self, snapshot: str, count: int, name: Optional[str],
                   detach: bool) -> "List[Box]":
        names = C.fork_names(name, count)
        made: "List[Optional[Box]]" = [None] * len(names)
        jobs = min(len(names), C.fork_jobs())
        errors: "List[BaseException]" = []
        lock = threading.Lock()
        todo = iter(range(len(names)))

        def worker() -> None:
            # a handle of its own on this box: a handle is one thread's at a time
            src = self._core if jobs == 1 else self._runtime._core.get(self.id)
            while src is not None:
                with lock:
                    i = next(todo, None) if not errors else None
                if i is None:
                    return
                try:
                    box = self._runtime._wrap(src.fork(snapshot, names[i], detach))
                except BaseException as e:  # noqa: BLE001 - raised below, in the caller
                    with lock:
                        errors.append(e)
                    return
                with lock:
                    made[i] = box
                    self._runtime._counters["created"] += 1

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if not errors and any(b is None for b in made):
            errors.append(InvalidStateError(f"box {self.id} is gone"))
        if errors:
            for box in made:  # all or nothing
                try:
                    if box is not None:
                        box._core.remove(True)
                except Exception:  # noqa: BLE001 - the first error is the one to raise
                    pass
            raise errors[0]
        return [b for b in made if b is not None]

    def _export_sync(self, options: Any, dest: Any) -> str:
        snapshot = C.option_snapshot(options, ExportOptions)
        path = C.export_path(dest, self.id, self.name)
        self._core.export(path, snapshot)
        return path

    async def clone_box(self, *, options: Any = None, name: Optional[str] = None) -> "Box":
        """A new, independent (stopped) box with a copy of this box's disk; the image's blocks
        are shared. The box must be stopped, unless CloneOptions(snapshot=NAME) (our
        extension) names the snapshot to clone."""
        return await C.call(self._clone_sync, options, name)

    async def fork(self, snapshot: str, count: int = 1, *, name: Optional[str] = None,
                   detach: bool = False) -> "List[Box]":
        """Our extension: count new running boxes resumed from this box's full snapshot, each
        with its own copy-on-write disk and RAM and a fresh identity (hostname, MAC, RNG
        reseeded, clock set to now), started a few at a time (C.fork_jobs()). Names: name for one, name-1 ... name-N for more. While forks rest
        on the snapshot, neither it nor this box can be removed."""
        return await C.call(self._fork_sync, snapshot, count, name, detach)

    async def export(self, *, options: Any = None, dest: str) -> str:
        """Write the box's disk and settings to one .boxlite archive and return its path:
        dest itself, or DEST/<name or id>.boxlite when dest is a directory. The box must be
        stopped, unless ExportOptions(snapshot=NAME) (our extension) names a snapshot."""
        return await C.call(self._export_sync, options, dest)

    async def __aenter__(self) -> "Box":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"Box(id={self.id!r}, name={self.name!r})"


class _Stream:
    """An async iterator of the str lines (newline kept) of one output stream."""

    def __init__(self, execution: "Execution", mask: int):
        self._ex = execution
        self._mask = mask
        self._split = C.LineSplitter()
        self._lines: "collections.deque[str]" = collections.deque()
        self._ended = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        while not self._lines:
            if self._ended:
                raise StopAsyncIteration
            data = await self._ex._next_bytes(0 if self._mask == _core.STDOUT else 1)
            if data:
                self._ex._box._counters["received"] += len(data)
                self._lines.extend(self._split.feed(data))
            else:
                self._ended = True
                self._lines.extend(self._split.end())
        return self._lines.popleft()


class ExecStdout(_Stream):
    """execution.stdout()"""


class ExecStderr(_Stream):
    """execution.stderr()"""


class ExecStdin:
    """execution.stdin(): send_input(bytes) and close()."""

    def __init__(self, execution: "Execution"):
        self._ex = execution

    async def send_input(self, data: bytes) -> None:
        """On the event loop, no thread: what the guest's window takes now
        (write_some), then wait on the process's fd, which turns readable once the window
        has room again (output taken meanwhile, so unread output does not keep it so)."""
        if isinstance(data, str):
            data = data.encode()
        view = memoryview(bytes(data))
        off = 0
        while True:
            off += self._ex._core.write_some(view[off:])
            if off >= len(view):
                break
            self._ex._step()
            await self._ex._sleep()
        self._ex._box._counters["sent"] += len(data)

    async def close(self) -> None:
        await C.call(self._ex._core.close_stdin)


# Bytes of one stream an Execution takes from the library before anyone asks for them (so
# that a wait, or a reader of the other stream, does not find the fd readable for ever);
# past it that stream stays in the library, whose credit window then holds the process.
_HOLD = 1 << 20
_NAP_S = 0.05  # the wait while a stream is held full: its unread output keeps the fd readable


class Execution:
    """A running process: its streams, its stdin, signals and its exit.

    Output and the exit come through one driver on the event loop: _sleep waits on the
    process's fd (one add_reader for all the coroutines awaiting this execution) or until
    its deadline, and _step takes what the library has, without waiting, into per-stream
    buffers (at most _HOLD each) and the result."""

    def __init__(self, box: Box, core_exec: "_core.Exec", tty: bool):
        self._box = box
        self._core = core_exec
        self._tty = tty
        self._id = C.next_exec_id()
        self._taken = set()
        self._bufs: "Tuple[collections.deque[bytes], collections.deque[bytes]]" = (
            collections.deque(), collections.deque())
        self._held = [0, 0]
        self._eof = [False, False]
        self._result: Optional[C.NativeExecResult] = None
        self._error: Optional[BaseException] = None
        self._fd: Optional[int] = None
        self._waiters: "set[asyncio.Future[None]]" = set()

    def _step(self) -> None:
        """The non-blocking step: buffered output (up to _HOLD a stream), then the result."""
        for i, mask in enumerate((_core.STDOUT, _core.STDERR)):
            while not self._eof[i] and self._held[i] < _HOLD:
                got = self._core.read(mask, 0)
                if got is None:
                    break
                if not got[1]:
                    self._eof[i] = True
                    break
                self._bufs[i].append(got[1])
                self._held[i] += len(got[1])
        if self._result is None and self._error is None:
            try:
                r = self._core.wait(0)
            except Exception as e:  # noqa: BLE001 - kept and raised by wait()
                self._error = e
            else:
                if r is not None:
                    self._result = C.NativeExecResult(r)

    def _wake(self) -> None:
        for f in self._waiters:
            if not f.done():
                f.set_result(None)

    async def _sleep(self) -> None:
        """Until the fd turns readable or the library's deadline for this process is due."""
        loop = asyncio.get_running_loop()
        ms = self._core.timeout()
        if any(self._held[i] >= _HOLD and not self._eof[i] for i in (0, 1)):
            await asyncio.sleep(_NAP_S if ms < 0 else min(_NAP_S, ms / 1000))
            return
        if self._fd is None:
            self._fd = self._core.fd()
        fut = loop.create_future()
        if not self._waiters:
            loop.add_reader(self._fd, self._wake)
        self._waiters.add(fut)
        timer = loop.call_later(ms / 1000, self._wake) if ms >= 0 else None
        try:
            await fut
        finally:
            if timer is not None:
                timer.cancel()
            self._waiters.discard(fut)
            if not self._waiters:
                loop.remove_reader(self._fd)

    async def _next_bytes(self, i: int) -> bytes:
        """The next bytes of stream i (0 stdout, 1 stderr); b"" at its end."""
        while not self._bufs[i] and not self._eof[i]:
            self._step()
            if self._bufs[i] or self._eof[i]:
                break
            await self._sleep()
        if not self._bufs[i]:
            return b""
        data = self._bufs[i].popleft()
        self._held[i] -= len(data)
        return data

    async def _collect(self) -> "Tuple[bytes, bytes]":
        """Both streams to their end, read together (SimpleBox.exec)."""
        async def drain(i: int) -> bytes:
            got = bytearray()
            while True:
                data = await self._next_bytes(i)
                if not data:
                    return bytes(got)
                got.extend(data)
        out, err = await asyncio.gather(drain(0), drain(1))
        return out, err

    def id(self) -> str:
        return self._id

    def _take(self, what: str) -> None:
        if what in self._taken:
            raise RuntimeError(f"{what} stream not available (already taken)")
        self._taken.add(what)

    def stdout(self) -> ExecStdout:
        self._take("stdout")
        return ExecStdout(self, _core.STDOUT)

    def stderr(self) -> ExecStderr:
        self._take("stderr")
        return ExecStderr(self, _core.STDERR)

    def stdin(self) -> ExecStdin:
        self._take("stdin")
        return ExecStdin(self)

    async def wait(self) -> C.NativeExecResult:
        while self._result is None and self._error is None:
            self._step()
            if self._result is None and self._error is None:
                await self._sleep()
        if self._error is not None:
            raise self._error
        return self._result

    async def kill(self) -> None:
        await self.signal(_signal.SIGKILL)

    async def signal(self, signo: int) -> None:
        await C.call(self._core.signal, int(signo))

    async def resize_tty(self, rows: int, cols: int) -> None:
        await C.call(self._core.resize, rows, cols)

    def __repr__(self) -> str:
        return f"Execution(id={self._id!r}, box={self._box.id!r})"


