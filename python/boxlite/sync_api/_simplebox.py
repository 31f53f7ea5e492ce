"""_simplebox.py — BoxLite's module path for SyncSimpleBox: the classes live in
boxlite.sync_api (one home); `from boxlite.sync_api._simplebox import ...` works
unchanged."""
from . import SyncSimpleBox  # noqa: F401

__all__ = ["SyncSimpleBox"]
