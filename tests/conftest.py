"""conftest.py — shared fixtures for boxlite's pytest suite: where the build is, a runtime
home shared by the session (so the default image is prepared once), and running the CLI.

Boxes run under what `auto` picks on this machine (KVM where a box boots under it, else TCG;
see boxlite_paths.suite_accel), or under BOXLITE_TEST_ACCEL=kvm|tcg|auto when set."""
import os
import pathlib
import subprocess

import pytest

from boxlite_paths import BOXLITE, BUILD, CLI, ROOT, suite_accel  # noqa: F401 (re-exported)


@pytest.fixture(scope="session")
def build_dir():
    if not BOXLITE.exists():
        pytest.fail(f"{BOXLITE} is missing: run `make build` first")
    return BUILD


@pytest.fixture(scope="session")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("boxlite-home")


@pytest.fixture(scope="session")
def box_env(home, build_dir):
    env = dict(os.environ)
    env["BOXLITE_HOME"] = str(home)
    env["BOXLITE_ACCEL"] = suite_accel()
    env.pop("BOXLITE_GUEST_DIR", None)
    return env


@pytest.fixture(scope="session")
def cli(box_env):
    return CLI(box_env)
