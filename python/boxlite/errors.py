"""errors.py — boxlite's exceptions.

Every failure of the native library is a RuntimeError (through NativeError and its
subclasses) whose message is the C library's message. The classes BoxLite maps its Rust
errors to (EngineError … ResourceExhaustedError) each name BoxliteError among their direct
bases, as BoxLite's do, and are NativeErrors too. BoxliteError, ExecError, TimeoutError and
ParseError are the pure-Python errors BoxLite's SDK offers for users' code."""

__all__ = [
    "BoxliteError",
    "NativeError",
    "InvalidArgumentError",
    "NotFoundError",
    "AlreadyExistsError",
    "InvalidStateError",
    "StoppedError",
    "ExecError",
    "TimeoutError",
    "ParseError",
    "NotAvailableError",
    "EngineError",
    "ConfigError",
    "StorageError",
    "ImageError",
    "PortalError",
    "NetworkError",
    "RpcError",
    "InternalError",
    "ExecutionError",
    "DatabaseError",
    "ResourceExhaustedError",
    "DeadlineError",
]


class BoxliteError(Exception):
    """Base of boxlite's own exceptions."""


class NativeError(BoxliteError, RuntimeError):
    """A failure reported by libboxlite; str(e) is the C message, e.code the BOXLITE_E* code."""

    code: int = -1


class InvalidArgumentError(NativeError, BoxliteError):
    """An argument or option was refused (BOXLITE_EINVAL)."""


class NotFoundError(NativeError, BoxliteError):
    """No such box, image or file (BOXLITE_ENOTFOUND)."""


class AlreadyExistsError(NativeError, BoxliteError):
    """The name or object already exists (BOXLITE_EEXISTS)."""


class InvalidStateError(NativeError, BoxliteError):
    """The box or process is not in a state that allows the call (BOXLITE_ESTATE)."""


class EngineError(NativeError, BoxliteError):
    """The VM engine (QEMU, its monitor) failed."""


class ConfigError(NativeError, BoxliteError, ValueError):
    """A configuration was refused (invalid or incompatible settings): a RuntimeError as in
    BoxLite, and a ValueError as option checks raised before."""


class StorageError(NativeError, BoxliteError):
    """A host file or socket failed (BOXLITE_EIO)."""


class ImageError(NativeError, BoxliteError):
    """An image pull, resolution or unpacking failed."""


class PortalError(NativeError, BoxliteError):
    """The guest agent sent something invalid or went away (BOXLITE_EPROTO)."""


class NetworkError(NativeError, BoxliteError):
    """A networking operation failed."""


class RpcError(NativeError, BoxliteError):
    """A transport-level error between host and guest."""


class InternalError(NativeError, BoxliteError):
    """An unexpected internal error."""


class ExecutionError(NativeError, BoxliteError):
    """A command could not be run by the runtime."""


class DatabaseError(NativeError, BoxliteError):
    """The runtime's state database failed."""


class ResourceExhaustedError(NativeError, BoxliteError):
    """A resource ran out (BOXLITE_ENOMEM)."""


class StoppedError(NativeError, BoxliteError):
    """The runtime has been shut down, or the handle closed."""


class NotAvailableError(NativeError, NotImplementedError):
    """The call needs a part of the C library this build does not have yet."""


class ExecError(BoxliteError):
    """A command failed (non-zero exit code); raised by users' code, not by boxlite."""

    def __init__(self, command: str, exit_code: int, stderr: str):
        self.command = command
        self.exit_code = exit_code
        self.stderr = stderr
        super().__init__(f"Command '{command}' failed with exit code {exit_code}: {stderr}")


class TimeoutError(BoxliteError):  # noqa: A001 - BoxLite's name
    """An operation timed out."""


class ParseError(BoxliteError):
    """Output could not be parsed."""


class DeadlineError(NativeError, TimeoutError):
    """A deadline of the native library passed (BOXLITE_ETIMEOUT); also a TimeoutError."""


def _register():
    from . import _core

    _core._set_errors(NativeError, {
        _core.EINVAL: InvalidArgumentError,
        _core.ENOTFOUND: NotFoundError,
        _core.EEXISTS: AlreadyExistsError,
        _core.ESTATE: InvalidStateError,
        _core.ETIMEOUT: DeadlineError,
        _core.ENOMEM: ResourceExhaustedError,
        _core.EIO: StorageError,
        _core.EPROTO: PortalError,
    })


def not_available(what: str, needs: str) -> NotAvailableError:
    """The error for an API entry whose C call has not landed in this build."""
    e = NotAvailableError(f"{what} is not available in this build (needs {needs})")
    e.code = -1
    return e
