"""boxlite_paths.py — where the build under test is, for every test module (a plain module:
`from conftest import ...` is ambiguous once tests/python has a conftest of its own), which
accelerator the suite's boxes use, and CLI, the runner of the boxlite CLI."""
import os
import pathlib
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("BOXLITE_BUILD", ROOT / "build"))
BOXLITE = BUILD / "src" / "cli" / "boxlite"


_kvm = {}


def kvm_unusable_reason():
    """None when a box boots under BOXLITE_ACCEL=kvm here, else why not (probed once: a fresh
    home, `run --rm -- true`; about 0.3 s where KVM is broken, a KVM boot where it works)."""
    if "why" not in _kvm:
        with tempfile.TemporaryDirectory(prefix="boxlite-kvm-probe-") as home:
            env = dict(os.environ, BOXLITE_HOME=home, BOXLITE_ACCEL="kvm")
            env.pop("BOXLITE_GUEST_DIR", None)
            r = subprocess.run([str(BOXLITE), "run", "--rm", "--", "true"], env=env,
                               capture_output=True, timeout=300)
        _kvm["why"] = None if r.returncode == 0 else (
            r.stderr.decode(errors="replace").strip()[-300:] or f"exit {r.returncode}")
    return _kvm["why"]


def suite_accel():
    """BOXLITE_TEST_ACCEL when set (kvm, tcg or auto, passed on as BOXLITE_ACCEL); otherwise
    what auto picks on this machine, decided once for the session: kvm where a box boots
    under it, tcg elsewhere. (Passing `auto` itself would put auto's one-line notice about a
    broken /dev/kvm into every test's stderr; test_run.py checks auto on its own.)"""
    forced = os.environ.get("BOXLITE_TEST_ACCEL")
    if forced:
        return forced
    return "kvm" if kvm_unusable_reason() is None else "tcg"


class CLI:
    """Runs the boxlite CLI with the session's environment."""

    def __init__(self, env):
        self.env = env

    def run(self, *args, timeout=120, input=None, env=None, check=False):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run([str(BOXLITE), *args], capture_output=True, timeout=timeout,
                              input=input, env=e, check=check)

    def popen(self, *args, **kw):
        return subprocess.Popen([str(BOXLITE), *args], env=self.env, **kw)


def run_api_program(name, env, *args, timeout=600, wrap=()):
    """Run tests/api/<name> (a C program over the public API; `wrap`: a command in front, such
    as valgrind) and check it exited 0. Returns (stdout bytes, a log for assertion
    messages)."""
    r = subprocess.run([*wrap, str(BUILD / "tests" / "api" / name), *map(str, args)],
                       capture_output=True, env=env, timeout=timeout)
    log = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")[-4000:]
    print(log)
    assert r.returncode == 0, log
    return r.stdout, log
