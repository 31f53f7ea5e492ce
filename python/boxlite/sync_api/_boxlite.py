"""_boxlite.py — BoxLite's module path for SyncBoxlite: the classes live in
boxlite.sync_api (one home); `from boxlite.sync_api._boxlite import ...` works
unchanged."""
from . import SyncBoxlite  # noqa: F401

__all__ = ["SyncBoxlite"]
