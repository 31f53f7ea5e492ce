"""_codebox.py — BoxLite's module path for SyncCodeBox: the classes live in
boxlite.sync_api (one home); `from boxlite.sync_api._codebox import ...` works
unchanged."""
from . import SyncCodeBox  # noqa: F401

__all__ = ["SyncCodeBox"]
