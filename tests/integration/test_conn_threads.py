"""test_conn_threads.py — tests/api/conn_threads.c: one process holding 6 running boxes has no
more threads than with 2 (every box channel is read by one reader thread, src/lib/box/conn.c);
exec output and status through each; a box whose QEMU is SIGKILLed fails its running process
promptly while the others keep working; a channel freed while output streams into it is
freed cleanly."""
from boxlite_paths import run_api_program


def test_box_channels_share_one_reader_thread(box_env):
    out, log = run_api_program("conn_threads", box_env, timeout=900)
    assert out.endswith(b"ok\n"), log
