"""test_sync.py — the sync API in a plain script with no event loop (one boot)."""
import os
import subprocess
import sys
import textwrap

import boxlite

SITE = __import__('pathlib').Path(boxlite.__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""\
    import pathlib
    import sys
    import boxlite
    from boxlite import BoxOptions, Options, SyncBoxlite, SyncCodeBox, SyncSimpleBox

    with SyncBoxlite(Options(home_dir=sys.argv[1])) as rt:
        with SyncSimpleBox(image="default", runtime=rt, name="sync-simple") as sb:
            assert sb.name == "sync-simple" and sb.created is True
            r = sb.exec("sh", "-c", "echo hi; echo err >&2; exit 2")
            assert (r.exit_code, r.stdout, r.stderr) == (2, "hi\\n", "err\\n"), r
            assert sb.info().state.running
            box = rt.get(sb.id)
            d = pathlib.Path(sys.argv[2])
            (d / "s.txt").write_text("sync copy\\n")
            sb.copy_in(str(d / "s.txt"), "/root/")
            box.copy_out("/root/s.txt", str(d / "s-back.txt"))
            assert (d / "s-back.txt").read_text() == "sync copy\\n"
            assert isinstance(rt.images.list(), list)
            ex = box.exec("sh", ["-c", "cat; seq 3 >&2"])
            ex.stdin().send_input(b"a\\nb\\n")
            ex.stdin().close()
            assert list(ex.stdout()) == ["a\\n", "b\\n"]
            assert list(ex.stderr()) == ["1\\n", "2\\n", "3\\n"]
            assert ex.wait().exit_code == 0 and ex.id.startswith("exec-")
            ex = box.exec("sleep", ["60"])
            ex.kill()
            assert ex.wait().exit_code == -9
            try:
                box.exec("true").resize_tty(10, 10)
            except RuntimeError as e:
                assert "tty" in str(e)
            else:
                raise AssertionError("resize_tty without a tty")
            assert rt.metrics().total_commands_executed >= 3
            sb_id = sb.id
        assert rt.get(sb_id) is None
        assert rt.get("nope-nope") is None
        rt.shutdown()
        try:
            rt.create(BoxOptions(image="default"))
        except RuntimeError as e:
            assert "shut down" in str(e)
        else:
            raise AssertionError("create after shutdown")
    print("sync ok")
    """)


def test_sync_api_in_a_plain_script(py_home, tmp_path):
    script = tmp_path / "sync_script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(SITE))
    r = subprocess.run([sys.executable, str(script), str(py_home), str(tmp_path)], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "sync ok\n"
