"""test_c_api.py — the public C API used directly: the README's example program, and handle
lifetimes (an exec outliving its box's stop, two handles on one box) under valgrind."""
import re
import shutil
import subprocess

import pytest

from boxlite_paths import BUILD, ROOT, run_api_program


def test_readme_build_command_builds_and_runs_its_example(box_env, tmp_path):
    """The README's C block is examples/hello.c, and its own `cc ... -lboxlite` line builds
    it (against BOXLITE_BUILD when the build is elsewhere) into a program that works."""
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("```c\n") + 5:]
    block = block[:block.index("```")]
    hello = (ROOT / "examples" / "hello.c").read_text()
    assert block == hello[hello.index("#include <boxlite.h>"):], "README and hello.c differ"
    cmd = re.search(r"`(cc [^`]*-lboxlite[^`]*)`", readme).group(1)
    cmd = cmd.replace("-Lbuild/", f"-L{BUILD}/").replace("=build/", f"={BUILD}/")
    cmd = cmd.replace("-o hello", f"-o {tmp_path}/hello").replace("./hello", f"{tmp_path}/hello")
    r = subprocess.run(["sh", "-c", cmd], cwd=ROOT, capture_output=True, env=box_env,
                       timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-3000:]
    assert r.stdout == b"hello from a box\n"


def test_readme_example_prints_from_a_box(box_env):
    r = subprocess.run([str(BUILD / "examples" / "hello")], capture_output=True, env=box_env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello from a box\n"


def test_handle_lifetimes_are_memory_safe(box_env):
    wrap = ()
    if shutil.which("valgrind"):
        wrap = ("valgrind", "--error-exitcode=99", "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--trace-children=no", "-q")
    out, _ = run_api_program("lifetimes", box_env, timeout=300, wrap=wrap)
    assert out.endswith(b"ok\n")


def test_exec_nonblocking_core_timeouts_and_hung_guest(box_env):
    """tests/api/exec_nonblock.c: boxlite_exec_timeout, the timeout-0 steps (EAGAIN,
    ETIMEOUT), the blocking read and wait rebuilt on them honouring their timeouts, a poller
    ending a hung guest's timed process with poll(fd, boxlite_exec_timeout) alone, and a
    tunnel's socket driven by poll."""
    out, _ = run_api_program("exec_nonblock", box_env, timeout=400)
    assert out.endswith(b"ok\n")
