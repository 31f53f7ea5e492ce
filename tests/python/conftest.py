"""conftest.py — fixtures of the Python module's tests: the installed package (make python
puts it under $BOXLITE_BUILD/python), one runtime home for the session and one shared
running box on the built-in image, so that most tests cost no boot; and a real local
docker-registry serving the Debian + python3 test image as python:slim (search on), with a
runtime home whose registries.json points at it."""
import asyncio
import json
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("BOXLITE_BUILD", ROOT / "build"))
SITE = BUILD / "python"
if SITE.is_dir() and str(SITE) not in sys.path:
    sys.path.insert(0, str(SITE))

os.environ.pop("BOXLITE_GUEST_DIR", None)

import boxlite  # noqa: E402 - after the path above; `make python` builds it

sys.path.insert(0, str(ROOT / "tests"))
import registry_fixture as rf  # noqa: E402
from boxlite_paths import suite_accel  # noqa: E402

os.environ["BOXLITE_ACCEL"] = suite_accel()  # KVM where usable, else TCG (tests/conftest.py)


@pytest.fixture(scope="session")
def py_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("boxlite-py-home")
    os.environ["BOXLITE_HOME"] = str(home)  # Boxlite.default() and subprocesses use it
    return home


@pytest.fixture(scope="session")
def runtime(py_home):
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(py_home)))
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def shared_box(runtime):
    """A running box on the built-in image, shared by the tests that only run commands."""
    async def make():
        box = await runtime.create(boxlite.BoxOptions(image="default"), name="shared")
        await box.start()
        return box

    box = asyncio.run(make())
    yield box
    asyncio.run(box.stop())




@pytest.fixture(scope="session")
def python_registry(tmp_path_factory):
    """docker-registry on 127.0.0.1 serving library/python:slim (Debian bookworm + python3,
    with /usr/local/bin/python) built by tests/registry_fixture.py."""
    work = tmp_path_factory.mktemp("py-registry")
    layout = rf.build_python_slim(work)
    reg = rf.Registry(work / "registry")
    try:
        reg.push(layout, "library/python:slim", "v2s2")
    except Exception:
        reg.stop()
        raise
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def registry_home(tmp_path_factory, python_registry):
    """A BOXLITE_HOME whose registries.json makes python_registry the search registry: what
    a script with no options (the seed snippet) reads on its own."""
    home = tmp_path_factory.mktemp("boxlite-registry-home")
    (home / "registries.json").write_text(json.dumps({"registries": [
        {"host": python_registry.host, "transport": "http", "search": True}]}))
    return home


@pytest.fixture(scope="session")
def python_runtime(registry_home, python_registry):
    """A runtime on registry_home configured through Options(image_registries=...) too."""
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(registry_home), image_registries=[
        boxlite.ImageRegistry(python_registry.host, transport="http", search=True)]))
    yield rt
    rt.close()
