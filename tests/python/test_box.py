"""test_box.py — the async API on real VMs: execs on one shared box (streams, stdin, 5000
lines, timeouts, kill, signals, tty, concurrency, copies), then one box's lifecycle by name,
stop under a running process, a runtime shutdown, and a box with volumes and a published
port."""
import asyncio
import signal
import socket
import time
import urllib.request

import pytest
from procs import gone

import boxlite

pytestmark = pytest.mark.asyncio


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(box, *argv, **kw):
    ex = await box.exec(argv[0], list(argv[1:]), **kw)
    out = [line async for line in ex.stdout()]
    err = [line async for line in ex.stderr()]
    res = await ex.wait()
    return res, "".join(out), "".join(err)


async def test_exec_streams_and_exit_code(shared_box):
    res, out, err = await run(shared_box, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (res.exit_code, out, err) == (3, "out\n", "err\n")
    assert res.error_message is None and res.timed_out is False


async def test_5000_lines_of_stdout_no_deadlock(shared_box):
    ex = await shared_box.exec("sh", ["-c", "i=0; while [ $i -lt 5000 ]; do "
                                      "echo \"line $i\"; echo \"e$i\" >&2; i=$((i+1)); done"])
    lines = [line async for line in ex.stdout()]
    errs = [line async for line in ex.stderr()]  # buffered meanwhile, up to the window
    res = await asyncio.wait_for(ex.wait(), 120)
    assert res.exit_code == 0
    assert len(lines) == 5000 and lines[0] == "line 0\n" and lines[-1] == "line 4999\n"
    assert len(errs) == 5000


async def test_stdin_send_input_and_close(shared_box):
    ex = await shared_box.exec("sh", ["-c", "tr a-z A-Z; echo done"])
    stdin = ex.stdin()
    await stdin.send_input(b"hello\n")
    await stdin.send_input(b"world\n")
    await stdin.close()
    out = [line async for line in ex.stdout()]
    assert out == ["HELLO\n", "WORLD\n", "done\n"]
    assert (await ex.wait()).exit_code == 0


async def test_streams_can_be_taken_once(shared_box):
    ex = await shared_box.exec("true")
    ex.stdout()
    with pytest.raises(RuntimeError, match="stream not available"):
        ex.stdout()
    ex.stderr()
    with pytest.raises(RuntimeError, match="stream not available"):
        ex.stderr()
    assert (await ex.wait()).exit_code == 0
    assert ex.id().startswith("exec-")


async def test_timeout_ends_the_process(shared_box):
    t0 = time.monotonic()
    ex = await shared_box.exec("sleep", ["60"], timeout_secs=1)
    res = await asyncio.wait_for(ex.wait(), 30)
    took = time.monotonic() - t0
    assert res.exit_code != 0 and res.timed_out
    assert took < 1 + 2 + 5, took


async def test_kill_gives_nonzero_exit(shared_box):
    ex = await shared_box.exec("sleep", ["60"])
    await asyncio.sleep(0.5)
    await ex.kill()
    res = await asyncio.wait_for(ex.wait(), 30)
    assert res.exit_code == -9  # BoxLite's: minus the signal


async def test_signal(shared_box):
    ex = await shared_box.exec("sh", ["-c", "trap 'echo got TERM; exit 7' TERM; "
                                      "echo ready; while :; do sleep 0.1; done"])
    out = ex.stdout()
    assert await out.__anext__() == "ready\n"
    await ex.signal(signal.SIGTERM)
    assert await out.__anext__() == "got TERM\n"
    assert (await asyncio.wait_for(ex.wait(), 30)).exit_code == 7


async def test_resize_tty(shared_box):
    ex = await shared_box.exec("true")
    with pytest.raises(RuntimeError, match="tty"):
        await ex.resize_tty(40, 100)
    await ex.wait()
    ex = await shared_box.exec("sh", ["-c", "sleep 1; stty size"], tty=True)
    await ex.resize_tty(40, 100)
    out = "".join([line async for line in ex.stdout()])
    assert "40 100" in out
    assert (await ex.wait()).exit_code == 0


async def test_concurrent_execs_with_gather(shared_box):
    # each exec waits (at most 60 s) until all six have started: one after another, the
    # first would wait for ever and say so
    wait_all = ('touch /tmp/gather/$0; n=0; while [ "$(ls /tmp/gather | wc -l)" -lt 6 ]; do '
                'n=$((n+1)); [ $n -gt 300 ] && { echo alone; exit 1; }; sleep 0.2; done; echo $0')
    await run(shared_box, "sh", "-c", "rm -rf /tmp/gather; mkdir /tmp/gather")

    async def one(i):
        res, out, _ = await run(shared_box, "sh", "-c", wait_all, str(i))
        return res.exit_code, out

    results = await asyncio.gather(*(one(i) for i in range(6)))
    assert results == [(0, f"{i}\n") for i in range(6)], "the execs did not run at once"


async def test_env_cwd_user(shared_box):
    res, out, _ = await run(shared_box, "sh", "-c", 'echo "$FOO|$(pwd)|$(id -u)"',
                            env=[("FOO", "bar baz")], cwd="/tmp", user="1234")
    assert out == "bar baz|/tmp|1234\n"


async def test_missing_command(shared_box):
    res, _, err = await run(shared_box, "no-such-command-xyz")
    assert res.exit_code == 127
    assert res.error_message and "no-such-command-xyz" in res.error_message + err


async def test_info_metrics_and_lookups(runtime, shared_box):
    info = await shared_box.info()
    assert info.id == shared_box.id and len(info.id) == 12
    assert info.name == "shared" and info.image == "default"
    assert info.state.status == "running" and info.state.running and info.state.pid
    assert info.created_at.endswith("Z") and info.cpus == 1 and info.memory_mib == 512
    assert (info.network.mode, info.network.published_ports, info.ports, info.volumes) == (
        "enabled", [], [], [])
    m = await shared_box.metrics()
    assert m.commands_executed_total >= 1 and m.memory_bytes > 0
    # the library's stages of this handle's create and start (boxlite_box_get_timing)
    stages = ("stage_filesystem_setup_ms", "stage_image_prepare_ms", "stage_init_rootfs_ms",
              "stage_box_config_ms", "stage_box_spawn_ms", "stage_container_init_ms")
    for k in stages + ("total_create_duration_ms", "guest_boot_duration_ms"):
        assert type(getattr(m, k)) is int and getattr(m, k) >= 0, (k, getattr(m, k))
    assert m.guest_boot_duration_ms > 0 and m.stage_box_spawn_ms > 0
    total = m.total_create_duration_ms
    assert sum(getattr(m, k) for k in stages) + m.guest_boot_duration_ms <= total, m
    assert (await runtime.get("shared")).id == shared_box.id
    assert (await runtime.get(shared_box.id)) is shared_box
    assert (await runtime.get_info("shared")).id == shared_box.id
    assert shared_box.id in [i.id for i in await runtime.list_info()]
    rm = await runtime.metrics()
    assert rm.boxes_created_total >= 1 and rm.num_running_boxes >= 1
    assert rm.total_commands_executed >= 1


async def test_copy_in_and_out(shared_box, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("payload\n")
    await shared_box.copy_in(str(src), "/root/in.txt")
    res, out, _ = await run(shared_box, "cat", "/root/in.txt")
    assert out == "payload\n"
    # a tree, into an existing directory: lands as DIR/<name> (include_parent)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("deep\n")
    (tree / "link").symlink_to("sub/f")
    await shared_box.copy_in(tree, "/tmp")
    res, out, _ = await run(shared_box, "sh", "-c", "cat /tmp/tree/sub/f; readlink /tmp/tree/link")
    assert out == "deep\nsub/f\n"
    # include_parent=False: the contents go into the destination
    await run(shared_box, "mkdir", "-p", "/tmp/flat")
    await shared_box.copy_in(str(tree), "/tmp/flat",
                             boxlite.CopyOptions(include_parent=False))
    res, out, _ = await run(shared_box, "ls", "/tmp/flat")
    assert out.split() == ["link", "sub"]
    # recursive=False refuses a directory
    with pytest.raises(RuntimeError, match="recursive"):
        await shared_box.copy_in(str(tree), "/tmp/x", boxlite.CopyOptions(recursive=False))
    # out again: a file into a host directory, and a tree
    await shared_box.copy_out("/root/in.txt", str(tmp_path / "out"))
    assert (tmp_path / "out").read_text() == "payload\n"
    (tmp_path / "back").mkdir()
    await shared_box.copy_out("/tmp/tree", str(tmp_path / "back"))
    assert (tmp_path / "back" / "tree" / "sub" / "f").read_text() == "deep\n"
    assert (tmp_path / "back" / "tree" / "link").is_symlink()
    with pytest.raises(RuntimeError, match="no-such-file"):
        await shared_box.copy_out("/no-such-file", str(tmp_path / "nope"))


async def test_lifecycle_by_name_stop_and_remove(runtime):
    box, created = await runtime.get_or_create(
        boxlite.BoxOptions(image="default", auto_remove=False), name="life")
    assert created and box.name == "life"
    again, created = await runtime.get_or_create(boxlite.BoxOptions(image="default"),
                                                 name="life")
    assert not created and again.id == box.id
    assert (await box.info()).state.status == "configured"
    # exec boots the box when needed
    ex = await box.exec("sh", ["-c", "echo started; sleep 60"])
    out = ex.stdout()
    assert await out.__anext__() == "started\n"
    with pytest.raises(RuntimeError, match="running"):
        await runtime.remove("life")
    # stopping under a running process: its output so far stays readable, wait() says why
    await box.stop()
    assert (await box.info()).state.status == "stopped"
    assert [line async for line in out] == []
    with pytest.raises(RuntimeError, match="stopped"):
        await ex.wait()
    # a stopped box boots again on the next exec, with its disk as it was
    async with box:
        res, out2, _ = await run(box, "sh", "-c", "echo kept > /root/f; cat /root/f")
        assert out2 == "kept\n"
        await runtime.remove("life", force=True)
    assert await runtime.get("life") is None


async def test_shutdown_stops_boxes_and_refuses_calls(py_home, runtime):
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(py_home)))
    box = await rt.create(boxlite.BoxOptions(image="default"), name="doomed")
    await box.start()
    box_id = box.id
    await rt.shutdown(timeout=5)
    await rt.shutdown()  # twice is fine
    for call in (lambda: rt.create(boxlite.BoxOptions(image="default")),
                 lambda: rt.get("doomed"), lambda: rt.list_info(),
                 lambda: box.exec("true"), lambda: box.start()):
        with pytest.raises(RuntimeError, match="shut down"):
            await call()
    # auto_remove (the default): the stopped box is gone
    assert await runtime.get(box_id) is None


async def test_volumes_ports_and_network_options(runtime, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (rw / "from-host.txt").write_text("host wrote this\n")
    (ro / "r.txt").write_text("read only\n")
    port = free_port()
    off = await runtime.create(boxlite.BoxOptions(
        image="default", network=boxlite.NetworkSpec(mode="disabled")))
    assert (await off.info()).network.outbound.mode == "disabled"
    await runtime.remove(off.id)
    opts = dict(volumes=[(str(rw), "/data"), {"host_path": str(ro), "guest_path": "/ro",
                                                "read_only": True}],
                ports=[(port, 80)])
    async with boxlite.SimpleBox("default", runtime=runtime, **opts) as sb:
        info = await sb.info()
        assert (info.network.outbound.mode, info.network.inbound.mode) == ("enabled", "enabled")
        assert info.network.published_ports == [boxlite.PublishedPort(80, "127.0.0.1", port)]
        assert info.volumes == [f"{rw}:/data", f"{ro}:/ro:ro"]
        assert info.ports == [f"127.0.0.1:{port}->80/tcp"]
        r = await sb.exec("sh", "-c", "cat /data/from-host.txt /ro/r.txt; "
                          "echo guest > /data/from-guest.txt; echo x > /ro/new; echo w=$?")
        assert r.stdout == "host wrote this\nread only\nw=1\n", r.stderr
        assert (rw / "from-guest.txt").read_text() == "guest\n"
        assert sorted(p.name for p in ro.iterdir()) == ["r.txt"]
        r = await sb.exec("sh", "-c", "mkdir -p /www && echo served > /www/index.html && "
                          "httpd -p 80 -h /www")
        assert r.exit_code == 0, r.stderr
        body = await asyncio.get_running_loop().run_in_executor(
            None, lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20).read())
        assert body == b"served\n"
        # SimpleBox's copies
        (tmp_path / "c.txt").write_text("copied\n")
        await sb.copy_in(str(tmp_path / "c.txt"), "/root/")
        await sb.copy_out("/root/c.txt", str(tmp_path / "c-back.txt"))
        assert (tmp_path / "c-back.txt").read_text() == "copied\n"


KILLED_OWNER = """
import asyncio, sys, boxlite

async def main():
    rt = boxlite.Boxlite(boxlite.Options(home_dir=sys.argv[1]))
    box = await rt.create(boxlite.BoxOptions(image="default"), name="owned-by-killed")
    await box.start()
    print("up", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


async def test_a_program_killed_by_sigkill_stops_its_boxes(runtime, py_home):
    """A library program's non-detached box stops when the program dies, even by SIGKILL."""
    import os
    import subprocess
    import sys
    site = os.path.dirname(os.path.dirname(boxlite.__file__))
    p = subprocess.Popen([sys.executable, "-c", KILLED_OWNER, str(py_home)],
                         stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=site))
    try:
        assert p.stdout.readline() == b"up\n"
        info = await runtime.get_info("owned-by-killed")
        assert info.state.status == "running" and info.state.pid
        qemu = info.state.pid
        p.kill()
        p.wait()
        deadline = time.monotonic() + 30
        # stopped, or removed with it (Python's BoxOptions default to auto_remove)
        while getattr(await runtime.get_info("owned-by-killed"), "state", None) and \
                (await runtime.get_info("owned-by-killed")).state.status != "stopped":
            assert time.monotonic() < deadline, "the box outlived its killed creator"
            await asyncio.sleep(0.5)
        for _ in range(60):  # QEMU itself is gone, not only the record
            if gone(qemu):
                break
            await asyncio.sleep(0.5)
        assert gone(qemu), "the box's process outlived its killed creator"
    finally:
        p.kill()
        if await runtime.get_info("owned-by-killed") is not None:
            await runtime.remove("owned-by-killed", force=True)


BORROWER = """
import asyncio, sys, boxlite

async def main():
    rt = boxlite.Boxlite(boxlite.Options(home_dir=sys.argv[1]))
    box = await rt.get(sys.argv[2])
    ex = await box.exec("sh", ["-c", "echo borrowed > /root/borrowed"])  # boots nothing
    assert (await ex.wait()).exit_code == 0
    await box.copy_out("/root/borrowed", sys.argv[3])  # a copy "starts" it as well
    await rt.shutdown()  # stops the boxes this runtime started: none

asyncio.run(main())
"""


async def test_a_process_that_only_uses_a_running_box_leaves_it_running(runtime, py_home,
                                                                        tmp_path):
    """Another process's exec and copy on a box this one started, then its runtime's
    shutdown: the box stays running (an auto-remove box was deleted with its disk)."""
    import os
    import subprocess
    import sys
    site = os.path.dirname(os.path.dirname(boxlite.__file__))
    box = await runtime.create(boxlite.BoxOptions(image="default"), name="lent")
    try:
        await box.start()
        qemu = (await runtime.get_info("lent")).state.pid
        r = subprocess.run([sys.executable, "-c", BORROWER, str(py_home), "lent",
                            str(tmp_path / "out")], capture_output=True, timeout=300,
                           env=dict(os.environ, PYTHONPATH=site))
        assert r.returncode == 0, r.stderr.decode()[-2000:]
        assert (tmp_path / "out").read_text() == "borrowed\n"
        info = await runtime.get_info("lent")
        assert info is not None, "the borrower's shutdown removed the lender's box"
        assert info.state.status == "running" and info.state.pid == qemu
        res, out, _ = await run(box, "cat", "/root/borrowed")
        assert (res.exit_code, out) == (0, "borrowed\n")
    finally:
        if await runtime.get_info("lent") is not None:
            await runtime.remove("lent", force=True)
