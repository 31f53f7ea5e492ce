"""test_serve_rest_client.py — the Python REST client (boxlite.Boxlite.rest) against a real
`boxlite serve` on 127.0.0.1: the seed's three lines (create, exec, read) with a REST runtime,
streams, stdin, files, snapshots, errors mapped to boxlite's exception classes."""
import asyncio
import os
import sys

import pytest

from boxlite_paths import BUILD
from serve_helpers import KEY

SITE = BUILD / "python"
if SITE.is_dir() and str(SITE) not in sys.path:
    sys.path.insert(0, str(SITE))
boxlite = pytest.importorskip("boxlite")


def rest(port, key=KEY):
    return boxlite.Boxlite.rest(boxlite.BoxliteRestOptions(
        url=f"http://127.0.0.1:{port}", credential=boxlite.ApiKeyCredential(key)))


async def collect(stream):
    return "".join([line async for line in stream])


def test_rest_runtime_end_to_end(server, tmp_path):
    async def main():
        rt = rest(server.port)
        box = await rt.create(boxlite.BoxOptions(image="default", memory_mib=256),
                              name="serve-rest")
        try:
            ex = await box.exec("sh", ["-c", "echo hello; echo oops >&2; exit 4"])
            out, err = await asyncio.gather(collect(ex.stdout()), collect(ex.stderr()))
            res = await ex.wait()
            assert (out, err, res.exit_code) == ("hello\n", "oops\n", 4)
            with pytest.raises(RuntimeError, match="not available"):
                ex.stdout()

            ex = await box.exec("cat")
            await ex.stdin().send_input(b"line one\nline two\n")
            await ex.stdin().close()
            assert await collect(ex.stdout()) == "line one\nline two\n"
            assert (await ex.wait()).exit_code == 0

            ex = await box.exec("sleep", ["300"])
            with pytest.raises(RuntimeError):
                await ex.resize_tty(24, 80)
            await ex.signal(15)
            assert (await ex.wait()).exit_code == -15

            src = tmp_path / "src"
            src.mkdir()
            (src / "f.txt").write_text("files over rest\n")
            await box.copy_in(str(src), "/tmp")
            await box.copy_out("/tmp/src", str(tmp_path / "back"))  # as back (docker cp)
            assert (tmp_path / "back" / "f.txt").read_text() == "files over rest\n"

            info = await box.info()
            assert info.id == box.id and info.state.running and info.name == "serve-rest"
            assert box.id in [i.id for i in await rt.list_info()]
            assert await rt.get("no-such-box") is None
            with pytest.raises(boxlite.NotFoundError):
                await rt.remove("no-such-box")
            with pytest.raises(boxlite.AlreadyExistsError):
                await rt.create(boxlite.BoxOptions(image="default"), name="serve-rest")
            with pytest.raises(boxlite.EngineError, match="rootfs_path"):  # the server's 400
                await rt.create(boxlite.BoxOptions(image="default",
                                                   rootfs_path="/"))
            await box.stop()
            await box.snapshot.create("r1")
            assert [s.name for s in await box.snapshot.list()] == ["r1"]
            await box.snapshot.remove("r1")
        finally:
            await rt.remove(box.id, force=True)

    asyncio.run(main())


def test_rest_create_passes_auto_delete(server):
    """BoxOptions(auto_delete=N) reaches the server (CreateBoxRequest.auto_delete): the box
    reports it, and goes N s after it stopped; without it the box is kept (the spec's 0)."""
    async def main():
        rt = rest(server.port)
        box = await rt.create(boxlite.BoxOptions(image="default", memory_mib=256,
                                                 auto_delete=2), name="serve-rest-ad")
        kept = await rt.create(boxlite.BoxOptions(image="default"), name="serve-rest-kept")
        try:
            assert (await box.info()).auto_delete == 2
            assert (await kept.info()).auto_delete == 0
            await box.start()
            await box.stop()
            for _ in range(120):
                if await rt.get(box.id) is None:
                    break
                await asyncio.sleep(0.5)
            assert await rt.get(box.id) is None, "not deleted 2 s after its stop"
            assert await rt.get(kept.id) is not None
        finally:
            await rt.remove(kept.id, force=True)
            if await rt.get(box.id) is not None:
                await rt.remove(box.id, force=True)

    asyncio.run(main())


def test_rest_wrong_key_is_an_error(server):
    async def main():
        with pytest.raises(RuntimeError, match="API key"):
            await rest(server.port, key="nope").list_info()
    asyncio.run(main())
