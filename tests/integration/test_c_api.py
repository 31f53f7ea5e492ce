"""test_c_api.py — the public C API used directly: the README's example program, and handle
lifetimes (an exec outliving its box's stop, two handles on one box) under valgrind."""
import shutil
import subprocess

import pytest

from boxlite_paths import BUILD


def test_readme_example_prints_from_a_box(box_env):
    r = subprocess.run([str(BUILD / "examples" / "hello")], capture_output=True, env=box_env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello from a box\n"


def test_handle_lifetimes_are_memory_safe(box_env):
    cmd = [str(BUILD / "tests" / "api" / "lifetimes")]
    if shutil.which("valgrind"):
        cmd = ["valgrind", "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
               "--trace-children=no", "-q"] + cmd
    r = subprocess.run(cmd, capture_output=True, env=box_env, timeout=300)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()[-4000:]
    assert r.stdout.endswith(b"ok\n")
