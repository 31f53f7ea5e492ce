"""_execution.py — BoxLite's module path for SyncExecution, SyncExecStdout, SyncExecStderr,
SyncExecStdin: the classes live in boxlite.sync_api (one home); `from
boxlite.sync_api._execution import ...` works unchanged."""
from . import SyncExecution, SyncExecStdout, SyncExecStderr, SyncExecStdin  # noqa: F401

__all__ = ["SyncExecution", "SyncExecStdout", "SyncExecStderr", "SyncExecStdin"]
