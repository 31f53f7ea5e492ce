"""test_tunnel_threads.py — tests/api/tunnel_threads.c: 50 tunnels open at once from one
process cost at most 4 threads more (one relay thread for all of them), and each carries its
bytes exactly both ways (1 MiB on four of them) with half-close; a box's stop is end of file
on its open tunnel."""
from boxlite_paths import run_api_program


def test_fifty_tunnels_share_one_relay_thread(box_env):
    out, log = run_api_program("tunnel_threads", box_env)
    assert out.endswith(b"ok\n"), log
