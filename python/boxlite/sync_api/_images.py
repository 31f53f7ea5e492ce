"""_images.py — BoxLite's module path for SyncImageHandle: the classes live in
boxlite.sync_api (one home); `from boxlite.sync_api._images import ...` works unchanged."""
from . import SyncImageHandle  # noqa: F401

__all__ = ["SyncImageHandle"]
