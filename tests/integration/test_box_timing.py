"""test_box_timing.py — boxlite_box_get_timing (a handle's create and start stages) through
tests/api/timing.c: the version rules, a create's stages, a cold start's, an attach's (no boot
stages) and a warm template's restore (guest_boot), each within the call and its wall time."""
import subprocess

from boxlite_paths import BUILD


def test_box_timing_stages(box_env):
    r = subprocess.run([str(BUILD / "tests" / "api" / "timing")], capture_output=True,
                       env=box_env, timeout=600)
    log = r.stdout.decode() + r.stderr.decode()[-4000:]
    assert r.returncode == 0, log
    assert r.stdout.decode().endswith("ok\n"), log
