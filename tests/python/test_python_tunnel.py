"""test_tunnel.py — tunnels as a BoxLite program uses them (BoxLite's documented shapes:
`await box.network.tunnel(port)` → a one-connection handle; `await handle.connect()` → its
socket; `handle.endpoint()` → a borrowed fd; `SimpleBox.network`/`SimpleBox.tunnel`; the
sync twins), against busybox servers inside a real box on the built-in image."""
import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

import boxlite

SITE = __import__('pathlib').Path(boxlite.__file__).resolve().parent.parent

ECHO, HTTP = 7000, 8080
SERVERS = ("mkdir -p /www && echo served-from-the-box > /www/index.html && "
           f"httpd -p {HTTP} -h /www && "
           f"(setsid nc -ll -p {ECHO} -e cat </dev/null >/dev/null 2>&1 &) && "
           f"for i in $(seq 50); do netstat -ltn | grep -q :{ECHO} && exit 0; sleep 0.2; done; "
           "exit 1")


async def echo(loop, sock, data):
    """Send data, half-close, and read the echo to its end (non-blocking socket)."""
    async def reader():
        got = bytearray()
        while True:
            b = await loop.sock_recv(sock, 65536)
            if not b:
                return bytes(got)
            got.extend(b)
    task = asyncio.ensure_future(reader())
    await loop.sock_sendall(sock, data)
    sock.shutdown(__import__("socket").SHUT_WR)
    return await asyncio.wait_for(task, 120)


@pytest.mark.asyncio
async def test_simplebox_tunnels(runtime):
    loop = asyncio.get_running_loop()
    async with boxlite.SimpleBox(image="default", runtime=runtime, name="tunnels") as box:
        r = await box.exec("sh", "-c", SERVERS)
        assert r.exit_code == 0, r

        tunnel = await box.network.tunnel(ECHO)
        assert isinstance(tunnel, boxlite.BoxTunnel)
        assert isinstance(tunnel.endpoint(), int)
        sock = await tunnel.connect()
        with pytest.raises(RuntimeError):
            await tunnel.connect()  # one tunnel, one connection
        data = os.urandom(1 << 20)
        with sock:
            assert await echo(loop, sock, data) == data

        async def one(i):
            t = await box.tunnel(ECHO)
            with await t.connect() as s:
                blob = os.urandom(100_000 + i)
                return await echo(loop, s, blob) == blob
        assert await asyncio.gather(*[one(i) for i in range(10)]) == [True] * 10

        # the guest ends first: httpd answers and closes
        with await (await box.network.tunnel(HTTP)).connect() as s:
            await loop.sock_sendall(s, b"GET /index.html HTTP/1.0\r\n\r\n")
            got = bytearray()
            while True:
                b = await asyncio.wait_for(loop.sock_recv(s, 65536), 120)
                if not b:
                    break
                got.extend(b)
        assert got.startswith(b"HTTP/1.") and got.endswith(b"served-from-the-box\n"), got

        with pytest.raises(RuntimeError, match="Connection refused"):
            await box.network.tunnel(7999)
        for bad in (0, 65536, "80", True):
            with pytest.raises(ValueError):
                await box.network.tunnel(bad)

        # the native Box has the same network handle
        native = await runtime.get(box.id)
        with await (await native.network.tunnel(ECHO)).connect() as s:
            assert await echo(loop, s, b"native\n") == b"native\n"
    with pytest.raises(RuntimeError, match="not started"):
        await box.network.tunnel(ECHO)


SYNC = textwrap.dedent("""\
    import sys, boxlite
    from boxlite import Options, SyncBoxlite, SyncSimpleBox

    with SyncBoxlite(Options(home_dir=sys.argv[1])) as rt:
        with SyncSimpleBox(image="default", runtime=rt) as sb:
            assert sb.exec("sh", "-c", sys.argv[2]).exit_code == 0
            t = sb.network.tunnel(7000)
            with t.connect() as s:
                s.sendall(b"sync-hello\\n")
                s.shutdown(1)
                got = b""
                while True:
                    b = s.recv(65536)
                    if not b:
                        break
                    got += b
            assert got == b"sync-hello\\n", got
            box = rt.get(sb.id)
            with box.tunnel(7000).connect() as s:
                s.sendall(b"x")
                assert s.recv(1) == b"x"
            try:
                box.network.tunnel(7999)
                raise SystemExit("a refused port gave a tunnel")
            except RuntimeError as e:
                assert "Connection refused" in str(e), e
    print("sync-ok")
    """)


def test_sync_tunnels(py_home):
    env = dict(os.environ, PYTHONPATH=str(SITE))
    r = subprocess.run([sys.executable, "-c", SYNC, str(py_home), SERVERS], capture_output=True,
                       env=env, timeout=600)
    assert r.returncode == 0 and r.stdout.strip() == b"sync-ok", (r.stdout, r.stderr[-3000:])
