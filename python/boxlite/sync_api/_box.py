"""_box.py — BoxLite's module path for SyncBox, SyncSnapshotHandle: the classes live in
boxlite.sync_api (one home); `from boxlite.sync_api._box import ...` works unchanged."""
from . import SyncBox, SyncSnapshotHandle  # noqa: F401

__all__ = ["SyncBox", "SyncSnapshotHandle"]
