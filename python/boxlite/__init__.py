"""boxlite — run untrusted code in hardware-isolated micro-VMs; the SQLite of sandboxing.

    import asyncio, boxlite
    async def main():
        async with boxlite.SimpleBox("python:slim") as box:
            result = await box.exec("python", "-c", "print('Hello!')")
            print(result.stdout)
    asyncio.run(main())

The API follows BoxLite's Python SDK (docs/python.md lists what this build implements)."""
from . import _core
from .errors import _register as _register_errors

_register_errors()

from ._async import (Box, Boxlite, ExecStderr, ExecStdin, ExecStdout, Execution,  # noqa: E402
                     ImageHandle, SnapshotHandle)
from ._common import (BoxInfo, BoxMetrics, BoxStateInfo, HealthState,  # noqa: E402
                      HealthStatus, ImageInfo, ImagePullResult, NetworkDirectionInfo,
                      NetworkInfo, PublishedPort, RuntimeMetrics, SnapshotInfo)
from .codebox import CodeBox  # noqa: E402
from .errors import (AlreadyExistsError, BoxliteError, ConfigError,  # noqa: E402
                     DatabaseError, DeadlineError, EngineError, ExecError, ExecutionError,
                     ImageError, InternalError, InvalidArgumentError, InvalidStateError,
                     NativeError, NetworkError, NotAvailableError, NotFoundError, ParseError,
                     PortalError, ResourceExhaustedError, RpcError, StoppedError, StorageError,
                     TimeoutError)
from .exec import ExecResult  # noqa: E402
from .options import (AdvancedBoxOptions, BoxOptions, CloneOptions,  # noqa: E402
                      ContainerCapabilities, CopyOptions, ExportOptions, HealthCheckOptions,
                      ImageRegistry, NetworkSpec, Options, Secret, SecurityOptions,
                      SnapshotOptions)
from .network import BoxTunnel, NetworkHandle, SyncBoxTunnel, SyncNetworkHandle  # noqa: E402
from .simplebox import SimpleBox  # noqa: E402
from .skillbox import SkillBox  # noqa: E402
from .sync_api import (SyncBox, SyncBoxlite, SyncCodeBox, SyncExecStderr,  # noqa: E402
                       SyncExecStdin, SyncExecStdout, SyncExecution, SyncImageHandle,
                       SyncSimpleBox, SyncSkillBox, SyncSnapshotHandle)

from .rest import (AccessToken, ApiKeyCredential, BoxliteRestOptions,  # noqa: E402
                   Credential, RestBoxlite)

#: Boxlite.rest(BoxliteRestOptions(url=..., credential=ApiKeyCredential(...))): a runtime
#: over the Box API (`boxlite serve`), as in BoxLite's SDK
Boxlite.rest = staticmethod(RestBoxlite)

__version__ = "0.1.0"
#: the C library's version
native_version = _core.version()


def info(options: "Options | None" = None) -> dict:
    """What `boxlite info` prints, as a dict: versions, where the files are (home, guest
    files, QEMU, the shim), the accelerator a box started now gets and whether that is a
    hardware boundary, and what the store holds and takes on disk. Without options, the
    default runtime's."""
    if options is None:
        return Boxlite.default()._core.info()
    rt = Boxlite(options)
    try:
        return rt._core.info()
    finally:
        rt._core.close()


__all__ = [
    "info", "Options", "ImageRegistry", "BoxOptions", "NetworkSpec", "CopyOptions", "Secret",
    "SnapshotOptions", "CloneOptions", "ExportOptions", "SnapshotInfo",
    "AdvancedBoxOptions", "ContainerCapabilities", "SecurityOptions", "HealthCheckOptions",
    "NetworkInfo", "NetworkDirectionInfo", "PublishedPort", "HealthState", "HealthStatus",
    "SkillBox", "SyncSkillBox", "EngineError", "ConfigError", "StorageError", "ImageError",
    "PortalError", "NetworkError", "RpcError", "InternalError", "ExecutionError",
    "DatabaseError", "ResourceExhaustedError", "DeadlineError",
    "Boxlite", "Box", "Execution", "ExecStdout", "ExecStderr", "ExecStdin", "ImageHandle",
    "SnapshotHandle", "ImagePullResult", "ImageInfo", "BoxInfo", "BoxStateInfo", "BoxMetrics", "RuntimeMetrics",
    "SimpleBox", "CodeBox", "ExecResult", "BoxTunnel", "NetworkHandle", "SyncBoxTunnel",
    "SyncNetworkHandle",
    "BoxliteError", "NativeError", "InvalidArgumentError", "NotFoundError",
    "AlreadyExistsError", "InvalidStateError", "StoppedError", "NotAvailableError",
    "ExecError", "TimeoutError", "ParseError",
    "SyncBoxlite", "SyncBox", "SyncExecution", "SyncExecStdout", "SyncExecStderr",
    "SyncExecStdin", "SyncImageHandle", "SyncSnapshotHandle", "SyncSimpleBox", "SyncCodeBox",
    "ApiKeyCredential", "BoxliteRestOptions", "RestBoxlite", "Credential", "AccessToken",
]
