"""conftest.py — fixtures of the Python module's tests: the installed package (make python
puts it under $BOXLITE_BUILD/python), one runtime home for the session and one shared
running box on the built-in image, so that most tests cost no boot."""
import asyncio
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("BOXLITE_BUILD", ROOT / "build"))
SITE = BUILD / "python"
if SITE.is_dir() and str(SITE) not in sys.path:
    sys.path.insert(0, str(SITE))

os.environ["BOXLITE_ACCEL"] = os.environ.get("BOXLITE_TEST_ACCEL", "tcg")
os.environ.pop("BOXLITE_GUEST_DIR", None)

import boxlite  # noqa: E402 - after the path above; `make python` builds it


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


