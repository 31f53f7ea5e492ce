"""test_python_main_process.py — a box's main process and its lifecycle options, written as a
BoxLite user writes them (BoxLite's Python SDK: BoxOptions(image, cmd, entrypoint, auto_remove,
auto_delete, detach), start(), exec(), info(), stop(), get()): a box of an HTTP-server image
serves once started, its exit code is kept and it runs again after stop/start, auto_delete
deletes a stopped box after that many seconds, stop() removes a never-started auto_remove box."""
import asyncio
import os
import subprocess
import time

import pytest

import boxlite
from boxlite_paths import BUILD

pytestmark = pytest.mark.asyncio

SERVER = ["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"]
FETCH = ("import urllib.request as u; "
         "print(u.urlopen('http://127.0.0.1:8000/hello.py', timeout=5).read().decode())")


async def run(box, *argv):
    ex = await box.exec(argv[0], list(argv[1:]))
    out = "".join([line async for line in ex.stdout()])
    return (await ex.wait()).exit_code, out


async def wait_status(rt, box_id, status, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = await rt.get_info(box_id)
        if info is not None and info.state.status == status:
            return info
        await asyncio.sleep(0.5)
    raise AssertionError(f"box {box_id} not {status} within {timeout}s")


def cli_logs(home, box_id):
    env = dict(os.environ, BOXLITE_HOME=str(home))
    r = subprocess.run([str(BUILD / "src" / "cli" / "boxlite"), "logs", box_id], env=env,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


async def test_http_server_image_serves_after_start(python_runtime, registry_home):
    # python:slim's cmd is python3; the options' cmd makes it an HTTP server (BoxLite: cmd
    # replaces the image's CMD, the image's entrypoint is kept)
    box = await python_runtime.create(boxlite.BoxOptions(image="python:slim", cmd=SERVER,
                                                         auto_remove=False))
    try:
        await box.start()
        deadline = time.monotonic() + 60
        code, out = await run(box, "python3", "-c", FETCH)
        while code != 0 and time.monotonic() < deadline:  # the server binds a moment later
            await asyncio.sleep(1)
            code, out = await run(box, "python3", "-c", FETCH)
        assert code == 0 and "hello from python" in out
        info = await box.info()
        assert info.state.status == "running" and info.exit_code is None
        # its request log (http.server writes it to stderr) is the box's log
        assert '"GET /hello.py HTTP/1.1" 200' in cli_logs(registry_home, box.id)
    finally:
        await box.stop()
        await python_runtime.remove(box.id, force=True)


async def test_a_python_image_without_a_tty_stays_up(python_runtime):
    # python:slim's CMD (python3) reads its program from stdin, which stays open: the box runs
    box = await python_runtime.create(boxlite.BoxOptions(image="python:slim"))
    async with box:
        await asyncio.sleep(2)
        code, out = await run(box, "sh", "-c", "pidof python3 >/dev/null && echo main-up")
        assert code == 0 and out == "main-up\n"
        assert (await box.info()).state.status == "running"


async def test_exit_code_recorded_and_main_runs_again_after_restart(runtime, py_home):
    opts = boxlite.BoxOptions(image="default", entrypoint=["/bin/sh"],
                              cmd=["-c", "echo run-$(date +%N); exit 7"], auto_remove=False)
    box = await runtime.create(opts)
    try:
        await box.start()
        info = await wait_status(runtime, box.id, "stopped")
        assert info.exit_code == 7 and info.auto_remove is False and info.auto_delete == 0
        assert cli_logs(py_home, box.id).count("run-") == 1
        await box.start()  # the main process runs again with the box
        info = await wait_status(runtime, box.id, "stopped")
        assert info.exit_code == 7
        assert cli_logs(py_home, box.id).count("run-") == 2
    finally:
        await runtime.remove(box.id, force=True)


async def test_auto_delete_deletes_the_stopped_box_after_its_seconds(runtime):
    box = await runtime.create(boxlite.BoxOptions(image="default", auto_delete=3))
    box_id = box.id
    assert (await box.info()).auto_delete == 3
    await box.start()
    await box.stop()
    stopped = time.monotonic()
    # kept until then (auto_delete overrides auto_remove, which defaults to True)
    assert (await runtime.get_info(box_id)).state.status == "stopped"
    deadline = stopped + 30
    while await runtime.get(box_id) is not None:
        assert time.monotonic() < deadline, "the box was not deleted"
        await asyncio.sleep(0.5)
    assert time.monotonic() - stopped >= 2.5
    # auto_delete=0 keeps it, even with auto_remove
    kept = await runtime.create(boxlite.BoxOptions(image="default", auto_delete=0,
                                                   auto_remove=True))
    await kept.stop()
    await asyncio.sleep(1)
    assert await runtime.get(kept.id) is not None
    await runtime.remove(kept.id)


async def test_stop_of_a_never_started_auto_remove_box_removes_it(runtime):
    box = await runtime.create(boxlite.BoxOptions(image="default"))  # auto_remove: True
    assert (await box.info()).state.status == "configured"
    await box.stop()
    assert await runtime.get(box.id) is None
    kept = await runtime.create(boxlite.BoxOptions(image="default", auto_remove=False))
    await kept.stop()
    assert (await runtime.get_info(kept.id)).state.status == "configured"
    await runtime.remove(kept.id)


async def test_detach_resolves_as_boxlite(runtime):
    # BoxLite: auto_remove defaults to True, so detach=True alone is a conflict at create()
    with pytest.raises(RuntimeError, match="remove-on-stop is incompatible"):
        await runtime.create(boxlite.BoxOptions(image="default", detach=True))
    with pytest.raises(RuntimeError, match="remove-on-stop is incompatible"):
        await runtime.create(boxlite.BoxOptions(image="default", detach=True, auto_delete=5))
    # both given: made as options, refused at create() (BoxLite's moment and type)
    with pytest.raises(RuntimeError, match="remove-on-stop is incompatible"):
        await runtime.create(boxlite.BoxOptions(image="default", auto_remove=True, detach=True))
    for opts in (boxlite.BoxOptions(image="default", detach=True, auto_remove=False),
                 boxlite.BoxOptions(image="default", detach=True, auto_delete=0),
                 # auto_delete=0 overrides auto_remove=True (BoxLite): a kept detached box
                 boxlite.BoxOptions(image="default", auto_remove=True, auto_delete=0,
                                    detach=True)):
        box = await runtime.create(opts)
        info = await box.info()
        assert info.detach is True and info.auto_delete == 0
        await runtime.remove(box.id)
