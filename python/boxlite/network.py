"""network.py — tunnels, as in BoxLite's SDK: `await box.network.tunnel(port)` connects to
127.0.0.1:port inside the running box through its agent channel (no host port is published)
and returns a one-connection handle; `connect()` consumes it into a socket, `endpoint()`
lends its file descriptor. The sync twins (SyncNetworkHandle, SyncBoxTunnel) block instead.
One tunnel is one TCP connection: call tunnel() again for each further connection."""
import socket
import threading
from typing import Any, Optional, Union

from . import _common as C

__all__ = ["Tunnel", "BoxNetwork", "BoxTunnel", "NetworkHandle", "SyncBoxTunnel",
           "SyncNetworkHandle"]


def check_port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError("port must be an integer between 1 and 65535")
    return port


class Tunnel:
    """One connection to a port inside a box: the host end is a connected stream socket."""

    def __init__(self, fd: int):
        self._fd: Optional[int] = fd
        self._lock = threading.Lock()

    def _take(self) -> int:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is None:
            raise RuntimeError("the tunnel was already consumed (connect() or close())")
        return fd

    def as_socket(self, blocking: bool) -> socket.socket:
        """Consume the tunnel into a socket.socket the caller owns."""
        s = socket.socket(fileno=self._take())
        s.setblocking(blocking)
        return s

    async def connect(self) -> socket.socket:
        """Consume the tunnel and return its bidirectional byte stream: a non-blocking
        socket (for asyncio's sock_* calls or open_connection(sock=...))."""
        return self.as_socket(False)

    def endpoint(self) -> Union[str, int]:
        """The borrowed local file descriptor (valid until connect() or close())."""
        with self._lock:
            if self._fd is None:
                raise RuntimeError("the tunnel was already consumed (connect() or close())")
            return self._fd

    def close(self) -> None:
        """Drop an unconsumed tunnel (its guest connection is reset)."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            socket.socket(fileno=fd).close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        return f"Tunnel(fd={self._fd})"


class BoxNetwork:
    """`Box.network`: network operations of one box."""

    def __init__(self, box: Any):
        self._box = box

    def _tunnel_sync(self, port: int) -> Tunnel:
        return Tunnel(self._box._core.tunnel(check_port(port)))

    async def tunnel(self, port: int) -> Tunnel:
        """Connect to 127.0.0.1:port inside the running box; RuntimeError when the guest
        refuses (nothing listens there) or the box is not running."""
        check_port(port)
        return await C.call(self._tunnel_sync, port)


class BoxTunnel:
    """SimpleBox's tunnel handle (BoxLite's BoxTunnel)."""

    def __init__(self, tunnel: Tunnel):
        self._tunnel = tunnel

    async def connect(self) -> socket.socket:
        """Consume the tunnel and return its bidirectional byte stream."""
        return await self._tunnel.connect()

    def endpoint(self) -> Union[str, int]:
        """The borrowed local file descriptor."""
        return self._tunnel.endpoint()

    def close(self) -> None:
        self._tunnel.close()


class NetworkHandle:
    """`SimpleBox.network`."""

    def __init__(self, owner: Any):
        self._owner = owner

    async def tunnel(self, port: int) -> BoxTunnel:
        """Establish and return a tunnel handle for a port inside the box."""
        box = self._owner._require()
        check_port(port)
        return BoxTunnel(await box.network.tunnel(port))


class SyncBoxTunnel:
    """The sync twin of BoxTunnel: connect() returns a blocking socket."""

    def __init__(self, tunnel: Tunnel):
        self._tunnel = tunnel

    def connect(self) -> socket.socket:
        """Consume the tunnel and return its bidirectional byte stream (blocking)."""
        return self._tunnel.as_socket(True)

    def endpoint(self) -> Union[str, int]:
        return self._tunnel.endpoint()

    def close(self) -> None:
        self._tunnel.close()


class SyncNetworkHandle:
    """`SyncBox.network` and `SyncSimpleBox.network`."""

    def __init__(self, box_of: Any):
        self._box_of = box_of  # () -> the async Box (raises when there is none)

    def tunnel(self, port: int) -> SyncBoxTunnel:
        """Establish and return a tunnel handle for a port inside the box."""
        check_port(port)
        return SyncBoxTunnel(self._box_of().network._tunnel_sync(port))
