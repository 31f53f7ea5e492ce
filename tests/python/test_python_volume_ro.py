"""test_python_volume_ro.py — issue #15 item 8 as a BoxLite program meets it: a read-only
volume (`BoxOptions(volumes=[(host, guest, True)])`, sync API) shows `ro` in /proc/mounts,
refuses writes, and guest root's `mount -o remount,rw` leaves it read-only, the host file
untouched. Written from BoxLite's documented API (the GHSA-g6ww-w5j2-r7x3 attack)."""
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

    host = pathlib.Path(sys.argv[2])
    (host / "secret.txt").write_text("original\\n")

    def sh(box, script):
        ex = box.exec("sh", ["-c", script])
        out = "".join(ex.stdout())
        return ex.wait().exit_code, out

    def mount_opts(box):
        _, mounts = sh(box, "grep ' /mnt/ro ' /proc/mounts")
        lines = mounts.splitlines()
        assert lines, "the volume is not mounted"
        return lines[-1].split()[3].split(",")

    with boxlite.SyncBoxlite(boxlite.Options(home_dir=sys.argv[1])) as rt:
        box = rt.create(boxlite.BoxOptions(image="default", volumes=[(str(host), "/mnt/ro", True)],
                                           auto_remove=False))
        try:
            assert "ro" in mount_opts(box), mount_opts(box)
            code, _ = sh(box, "echo changed > /mnt/ro/secret.txt")
            assert code != 0, "a write to a read-only volume succeeded"
            code, out = sh(box, "mount -o remount,rw /mnt/ro 2>&1; echo rc=$?")
            assert "rc=0" not in out, out
            after = mount_opts(box)
            assert "ro" in after and "rw" not in after, after
            code, _ = sh(box, "echo changed > /mnt/ro/secret.txt")
            assert code != 0, "a write after the remount succeeded"
            assert sh(box, "cat /mnt/ro/secret.txt") == (0, "original\\n")
            assert (host / "secret.txt").read_text() == "original\\n"
        finally:
            box.stop()
            rt.remove(box.id)
    print("ro ok")
    """)


def test_read_only_volume_resists_remount_as_a_boxlite_program(py_home, tmp_path):
    script, host = tmp_path / "ro_script.py", tmp_path / "share"
    host.mkdir()
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(SITE))
    r = subprocess.run([sys.executable, str(script), str(py_home), str(host)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "ro ok\n"
