"""simplebox.py — SimpleBox: a box created on `async with` (or start()), commands run to their
end with exec(), removed on exit unless auto_remove=False."""
from typing import Any, Dict, Optional

from ._async import Box, Boxlite
from .exec import ExecResult, raise_if_timed_out
from .network import BoxTunnel, NetworkHandle
from .options import BoxOptions, CopyOptions

__all__ = ["BoxTunnel", "NetworkHandle", "SimpleBox"]

_NOT_STARTED = ("Box not started. Use 'async with SimpleBox(...) as box:' or call "
                "'await box.start()' first.")


class SimpleBox:
    """A box for running commands: SimpleBox("python:slim") (image="default": the image
    built into this library)."""

    def __init__(self, image: Optional[str] = None, rootfs_path: Optional[str] = None,
                 memory_mib: Optional[int] = None, cpus: Optional[int] = None,
                 runtime: Optional[Boxlite] = None, name: Optional[str] = None,
                 auto_remove: bool = True, reuse_existing: bool = False, **box_options: Any):
        if not image and not rootfs_path:
            raise ValueError("Either 'image' or 'rootfs_path' must be provided")
        self._runtime = runtime
        self._box_options = BoxOptions(image=image, rootfs_path=rootfs_path, cpus=cpus,
                                       memory_mib=memory_mib, auto_remove=auto_remove,
                                       **box_options)
        self._name = name
        self._reuse_existing = reuse_existing
        self._box: Optional[Box] = None
        self._started = False
        self._created: Optional[bool] = None

    def _rt(self) -> Boxlite:
        if self._runtime is None:
            self._runtime = Boxlite.default()
        return self._runtime

    def _require(self) -> Box:
        if not self._started or self._box is None:
            raise RuntimeError(_NOT_STARTED)
        return self._box

    async def __aenter__(self) -> "SimpleBox":
        if self._started:
            return self
        rt = self._rt()
        if self._reuse_existing:
            self._box, self._created = await rt.get_or_create(self._box_options,
                                                              name=self._name)
        else:
            self._box = await rt.create(self._box_options, name=self._name)
            self._created = True
        await self._box.start()
        self._started = True
        return self

    async def start(self) -> "SimpleBox":
        return await self.__aenter__()

    async def __aexit__(self, *exc: Any) -> None:
        if self._started and self._box is not None:
            await self._box.stop()
            self._started = False

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
        """The box's BoxInfo (with or without await)."""
        return self._require().info()

    async def metrics(self) -> Any:
        return await self._require().metrics()

    @property
    def network(self) -> NetworkHandle:
        """The box's network handle: `await box.network.tunnel(port)`."""
        return NetworkHandle(self)

    async def tunnel(self, port: int) -> BoxTunnel:
        """A tunnel to port inside this box (network.tunnel)."""
        return await self.network.tunnel(port)

    async def exec(self, cmd: str, *args: str, env: Optional[Dict[str, str]] = None,
                   user: Optional[str] = None, timeout: Optional[float] = None,
                   cwd: Optional[str] = None) -> ExecResult:
        """Run a command to its end; both streams are read concurrently. A timeout raises
        boxlite.TimeoutError, as in BoxLite."""
        box = self._require()
        execution = await box.exec(cmd, list(args), env, user=user, timeout_secs=timeout,
                                   cwd=cwd)
        out, err = await execution._collect()
        box._counters["received"] += len(out) + len(err)
        res = await execution.wait()
        raise_if_timed_out(res.timed_out, cmd, args, timeout)
        return ExecResult(exit_code=res.exit_code,
                          stdout=out.decode("utf-8", errors="replace"),
                          stderr=err.decode("utf-8", errors="replace"),
                          error_message=res.error_message, timed_out=res.timed_out)

    async def stop(self) -> None:
        await self._require().stop()
        self._started = False

    async def shutdown(self) -> None:
        await self.stop()

    async def copy_in(self, host_path: str, container_dest: str, *, overwrite: bool = True,
                      follow_symlinks: bool = False, include_parent: bool = True) -> None:
        opts = CopyOptions(True, overwrite, follow_symlinks, include_parent)
        await self._require().copy_in(host_path, container_dest, opts)

    async def copy_out(self, container_src: str, host_dest: str, *, overwrite: bool = True,
                       follow_symlinks: bool = False, include_parent: bool = True) -> None:
        opts = CopyOptions(True, overwrite, follow_symlinks, include_parent)
        await self._require().copy_out(container_src, host_dest, opts)

    def __repr__(self) -> str:
        return f"SimpleBox(image={self._box_options.image!r}, started={self._started})"
