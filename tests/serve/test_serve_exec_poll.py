"""test_serve_exec_poll.py — the non-blocking core's first piece: boxlite_exec_fd, a pollable
fd per execution, driven by one poll thread over three executions of a real box
(tests/serve/exec_poll.c, built here against the build's libboxlite)."""
import subprocess

from boxlite_paths import BUILD, ROOT
from serve_helpers import serve_env


def test_one_thread_polls_many_executions(box_env, tmp_path):
    exe = tmp_path / "exec_poll"
    lib = next((BUILD / "src" / "lib").glob("libboxlite.so*")).parent
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror", f"-I{ROOT}/include",
                    str(ROOT / "tests/serve/exec_poll.c"), f"-L{lib}", "-lboxlite",
                    f"-Wl,-rpath,{lib}", "-o", str(exe)], check=True, timeout=120)
    p = subprocess.run([str(exe)], env=serve_env(box_env), capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0 and p.stdout.strip() == "OK", p.stdout + p.stderr
