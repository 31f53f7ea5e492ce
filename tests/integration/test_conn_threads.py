"""test_conn_threads.py — tests/api/conn_threads.c: one process holding 6 running boxes has no
more threads than with 2 (every box channel is read by one reader thread, src/lib/box/conn.c);
exec output and status through each; a box whose QEMU is SIGKILLed fails its running process
promptly while the others keep working; a channel freed while output streams into it is
freed cleanly."""
import subprocess

from boxlite_paths import BUILD


def test_box_channels_share_one_reader_thread(box_env):
    r = subprocess.run([str(BUILD / "tests" / "api" / "conn_threads")], capture_output=True,
                       env=box_env, timeout=900)
    out = r.stdout.decode() + r.stderr.decode()[-4000:]
    print(out)
    assert r.returncode == 0, out
    assert r.stdout.endswith(b"ok\n"), out
