"""_network.py — BoxLite's module path for SyncNetworkHandle and SyncBoxTunnel: the classes live
in boxlite.network (one home); `from boxlite.sync_api._network import ...` works unchanged."""
from ..network import SyncBoxTunnel, SyncNetworkHandle  # noqa: F401

__all__ = ["SyncBoxTunnel", "SyncNetworkHandle"]
