"""test_serve_rest_parity.py — the REST client shaped as BoxLite's SDK: options and credential
from the environment (and the `{prefix}` they route to), the sync runtime
(SyncBoxlite.rest: exec streams, files, snapshots, a tunnel) and SimpleBox on a REST
runtime against a real `boxlite serve` on
127.0.0.1, and what the Box API cannot do raising BoxLite's class (EngineError). One VM at a
time: the sync test's box, then SimpleBox's."""
import asyncio
import sys
import threading

import pytest

from boxlite_paths import BUILD
from serve_helpers import KEY, Server, serve_env

SITE = BUILD / "python"
if SITE.is_dir() and str(SITE) not in sys.path:
    sys.path.insert(0, str(SITE))
boxlite = pytest.importorskip("boxlite")

SECRET = "blk_env_secret_0123456789"


def rest_opts(port, **kw):
    return boxlite.BoxliteRestOptions(url=f"http://127.0.0.1:{port}",
                                      credential=boxlite.ApiKeyCredential(KEY), **kw)


def test_options_and_credential_from_env(monkeypatch):
    for v in ("BOXLITE_REST_URL", "BOXLITE_API_KEY", "BOXLITE_REST_PATH_PREFIX"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(boxlite.ConfigError, match="BOXLITE_REST_URL"):
        boxlite.BoxliteRestOptions.from_env()
    assert boxlite.ApiKeyCredential.from_env() is None
    monkeypatch.setenv("BOXLITE_REST_URL", "http://127.0.0.1:8100")
    o = boxlite.BoxliteRestOptions.from_env()
    assert (o.url, o.credential, o.path_prefix) == ("http://127.0.0.1:8100", None, None)

    monkeypatch.setenv("BOXLITE_API_KEY", SECRET)
    monkeypatch.setenv("BOXLITE_REST_PATH_PREFIX", "team-7")
    o = boxlite.BoxliteRestOptions.from_env()
    tok = o.credential.get_token()
    assert (tok.token, tok.expires_at) == (SECRET, None)
    assert o.path_prefix == o.prefix == "team-7"
    assert isinstance(o.credential, boxlite.Credential)
    assert issubclass(boxlite.ApiKeyCredential, boxlite.Credential)
    for text in (repr(o), str(o), repr(o.credential), str(o.credential), repr(tok)):
        assert SECRET not in text, text
    assert "ApiKeyCredential(***)" in repr(o)
    # BoxLite's keyword and ours are one attribute
    assert boxlite.BoxliteRestOptions("http://h", prefix="p").path_prefix == "p"
    o.prefix = "q"
    assert o.path_prefix == "q"
    with pytest.raises(TypeError):
        boxlite.BoxliteRestOptions("http://h", credential=SECRET)


def test_from_env_routes_through_the_prefix(box_env, tmp_path, monkeypatch):
    """A server with --prefix: BOXLITE_REST_PATH_PREFIX reaches /v1/{prefix}/boxes; without it
    the client asks GET /v1/me; a wrong one is the server's 404. No VM."""
    s = Server(serve_env(box_env), tmp_path, prefix="team-7")
    try:
        monkeypatch.setenv("BOXLITE_REST_URL", f"http://127.0.0.1:{s.port}")
        monkeypatch.setenv("BOXLITE_API_KEY", KEY)
        for prefix in ("team-7", None):
            if prefix is None:
                monkeypatch.delenv("BOXLITE_REST_PATH_PREFIX")
            else:
                monkeypatch.setenv("BOXLITE_REST_PATH_PREFIX", prefix)
            with boxlite.SyncBoxlite.rest(boxlite.BoxliteRestOptions.from_env()) as rt:
                assert isinstance(rt.list_info(), list)
                assert isinstance(rt.metrics(), boxlite.RuntimeMetrics)
        monkeypatch.setenv("BOXLITE_REST_PATH_PREFIX", "team-8")
        with boxlite.SyncBoxlite.rest(boxlite.BoxliteRestOptions.from_env()) as rt:
            with pytest.raises(boxlite.NotFoundError):
                rt.list_info()
        monkeypatch.delenv("BOXLITE_API_KEY")
        monkeypatch.setenv("BOXLITE_REST_PATH_PREFIX", "team-7")
        with boxlite.SyncBoxlite.rest(boxlite.BoxliteRestOptions.from_env()) as rt:
            with pytest.raises(RuntimeError, match="API key"):
                rt.list_info()
    finally:
        s.stop()


def bounded(fn, seconds=60):
    """fn() on a thread, its result within seconds (a hung stream fails, never hangs)."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert out, f"no result within {seconds} s"
    return out[0]


def run(box, script):
    ex = box.exec("sh", ["-c", script])
    out = "".join(ex.stdout())
    return out, ex.wait().exit_code


def test_sync_rest_runtime(server, tmp_path):
    with boxlite.SyncBoxlite.rest(rest_opts(server.port)) as rt:
        box = rt.create(boxlite.BoxOptions(image="default", memory_mib=256), name="rest-sync")
        try:
            assert isinstance(box, boxlite.SyncBox)
            assert rt.get("rest-sync").id == box.id
            assert box.id in [i.id for i in rt.list_info()]
            box.start()
            assert box.info().state.running

            # streamed: the first line arrives while the process still waits for stdin
            ex = box.exec("sh", ["-c", "echo first; read x; echo second $x; echo err >&2; "
                                 "exit 3"])
            lines = iter(ex.stdout())
            assert bounded(lambda: next(lines)) == "first\n"
            ex.stdin().send_input(b"go\n")
            assert bounded(lambda: list(lines)) == ["second go\n"]
            assert list(ex.stderr()) == ["err\n"]
            res = ex.wait()
            assert (res.exit_code, res.timed_out) == (3, False)
            m = box.metrics()
            assert isinstance(m, boxlite.BoxMetrics) and m.commands_executed_total >= 1
            assert m.bytes_received_total >= len("first\nsecond go\nerr\n")
            assert m.memory_bytes > 0
            assert m.guest_boot_duration_ms > 0 and m.stage_box_spawn_ms > 0  # BootTiming's

            # files: a tree into a directory, a file out as a path, a tree out into a dir
            src = tmp_path / "tree"
            src.mkdir()
            (src / "a.txt").write_text("alpha\n")
            box.copy_in(str(src), "/root")
            box.copy_out("/root/tree/a.txt", str(tmp_path / "a-back.txt"))
            assert (tmp_path / "a-back.txt").read_text() == "alpha\n"
            (tmp_path / "out").mkdir()
            box.copy_out("/root/tree", str(tmp_path / "out"))
            assert (tmp_path / "out" / "tree" / "a.txt").read_text() == "alpha\n"
            # the guest's archive is hostile: a link in it is refused, nothing is written
            assert run(box, "ln -s /etc/passwd /root/tree/evil")[1] == 0
            with pytest.raises(boxlite.InvalidArgumentError, match="evil"):
                box.copy_out("/root/tree", str(tmp_path / "hostile"))
            assert not (tmp_path / "hostile").exists()
            assert not [p for p in tmp_path.iterdir() if p.name.startswith(".boxlite-copy")]
            assert run(box, "rm /root/tree/evil")[1] == 0

            # snapshot (running), change, stop, restore, start: the change is gone
            assert run(box, "echo one > /root/mark; sync") == ("", 0)
            snap = box.snapshot.create("before")
            assert isinstance(snap, boxlite.SnapshotInfo)
            assert (snap.name, snap.kind, snap.box_id) == ("before", "disk", box.id)
            assert [s.name for s in box.snapshot.list()] == ["before"]
            assert box.snapshot.get("before").id == snap.id
            assert run(box, "echo two > /root/mark; sync") == ("", 0)
            box.stop()
            box.snapshot.restore("before")
            box.start()
            assert run(box, "cat /root/mark") == ("one\n", 0)

            # a tunnel to an in-box port, through the server's listener and a CONNECT
            assert run(box, "(setsid nc -ll -p 7100 -e cat </dev/null >/dev/null 2>&1 &); "
                            "sleep 1")[1] == 0
            with box.network.tunnel(7100).connect() as sock:
                sock.settimeout(60)
                sock.sendall(b"through the tunnel\n")
                got = b""
                while not got.endswith(b"\n"):
                    d = sock.recv(100)
                    assert d, got
                    got += d
                assert got == b"through the tunnel\n"

            # what the Box API cannot do: BoxLite's class (EngineError), before any request
            with pytest.raises(boxlite.EngineError, match="fork"):
                box.fork("before")
            with pytest.raises(boxlite.EngineError, match="full snapshot"):
                box.snapshot.create("full", memory=True)
            with pytest.raises(boxlite.EngineError, match="ports"):
                rt.create(boxlite.BoxOptions(image="default", ports=[(8080, 80)]))
            with pytest.raises(boxlite.EngineError, match="user"):
                box.exec("id", user="nobody")

            # SyncSimpleBox on the same runtime, reusing this box by name; its exit stops it
            with boxlite.SyncSimpleBox(image="default", runtime=rt, name="rest-sync",
                                       reuse_existing=True) as sb:
                assert (sb.created, sb.id) == (False, box.id)
                r = sb.exec("sh", "-c", "echo sync simple; echo e >&2")
                assert (r.stdout, r.stderr, r.exit_code) == ("sync simple\n", "e\n", 0)
            assert box.info().state.status == "stopped"
            box.snapshot.remove("before")
        finally:
            rt.remove(box.id, force=True)
        assert rt.get(box.id) is None
        rt.shutdown()
        with pytest.raises(boxlite.StoppedError):
            rt.list_info()


def test_simplebox_on_a_rest_runtime(server, tmp_path):
    """SimpleBox(runtime=Boxlite.rest(...)): exec, files and timeouts through the server; its
    auto_remove reaches the server as auto_delete=1 (BoxLite's --rm), so the box goes after
    its stop."""
    async def main():
        rt = boxlite.Boxlite.rest(rest_opts(server.port))
        try:
            await body(rt)
        finally:
            if await rt.get("rest-simple") is not None:
                await rt.remove("rest-simple", force=True)

    async def body(rt):
        async with boxlite.SimpleBox(image="default", memory_mib=256, runtime=rt,
                                     name="rest-simple") as sb:
            r = await sb.exec("sh", "-c", "echo hi; echo oops >&2; exit 2")
            assert (r.stdout, r.stderr, r.exit_code) == ("hi\n", "oops\n", 2)
            r = await sb.exec("sh", "-c", "echo $GREETING from $(pwd)",
                              env={"GREETING": "hello"}, cwd="/tmp")
            assert r.stdout == "hello from /tmp\n"
            (tmp_path / "f.txt").write_text("simple\n")
            await sb.copy_in(str(tmp_path / "f.txt"), "/root")
            await sb.copy_out("/root/f.txt", str(tmp_path / "back.txt"))
            assert (tmp_path / "back.txt").read_text() == "simple\n"
            with pytest.raises(boxlite.TimeoutError):
                await sb.exec("sleep", "60", timeout=2)
            box_id = sb.id
            assert (await sb.info()).auto_delete == 1
        for _ in range(240):
            if await rt.get(box_id) is None:
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail("SimpleBox's box was not removed after its stop")

    asyncio.run(main())
