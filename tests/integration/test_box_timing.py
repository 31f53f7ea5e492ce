"""test_box_timing.py — boxlite_box_get_timing (a handle's create and start stages) through
tests/api/timing.c: the version rules, a create's stages, a cold start's, an attach's (no boot
stages) and a warm template's restore (guest_boot), each within the call and its wall time."""
from boxlite_paths import run_api_program


def test_box_timing_stages(box_env):
    out, log = run_api_program("timing", box_env)
    assert out.endswith(b"ok\n"), log
