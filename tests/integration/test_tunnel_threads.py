"""test_tunnel_threads.py — tests/api/tunnel_threads.c: 50 tunnels open at once from one
process cost at most 4 threads more (one relay thread for all of them), and each carries its
bytes exactly both ways (1 MiB on four of them) with half-close; a box's stop is end of file
on its open tunnel."""
import subprocess

from boxlite_paths import BUILD


def test_fifty_tunnels_share_one_relay_thread(box_env):
    r = subprocess.run([str(BUILD / "tests" / "api" / "tunnel_threads")], capture_output=True,
                       env=box_env, timeout=600)
    out = r.stdout.decode() + r.stderr.decode()[-4000:]
    print(out)
    assert r.returncode == 0, out
    assert r.stdout.endswith(b"ok\n"), out
