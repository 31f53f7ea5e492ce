"""test_simplebox.py — SimpleBox and CodeBox on the built-in image (one boot), the seed's
snippet and CodeBox on the Debian+python image (once image pulls land)."""
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import boxlite

SITE = __import__('pathlib').Path(boxlite.__file__).resolve().parent.parent


def features():
    return boxlite._core.features

pytestmark = pytest.mark.asyncio

FAKE_PYTHON = ('#!/bin/sh\n'
               '# stands in for python3 on the busybox image: runs -c CODE through sh\n'
               'if [ "$1" = -m ]; then echo "pip: $*"; exit 0; fi\n'
               'echo "python got: $2"\n')

SEED = textwrap.dedent("""\
    import asyncio, boxlite
    async def main():
        async with boxlite.SimpleBox("python:slim") as box:
            result = await box.exec("python", "-c", "print('Hello!')")
            print(result.stdout)
    asyncio.run(main())
    """)


async def test_simplebox_and_codebox_on_the_builtin_image(runtime, tmp_path):
    async with boxlite.CodeBox(image="default", runtime=runtime, name="code") as cb:
        assert len(cb.id) == 12 and cb.created is True
        r = await cb.exec("sh", "-c", "echo $A; echo e >&2; exit 4", env={"A": "x"})
        assert (r.exit_code, r.stdout, r.stderr) == (4, "x\n", "e\n")
        assert isinstance(r, boxlite.ExecResult)
        r = await cb.exec("sh", "-c", "seq 5000")
        assert r.stdout.count("\n") == 5000
        r = await cb.exec("sleep", "60", timeout=1)
        assert r.exit_code != 0 and r.timed_out
        r = await cb.exec("pwd", cwd="/tmp")
        assert r.stdout == "/tmp\n"
        r = await cb.exec("id", "-u", user="42")
        assert r.stdout == "42\n"
        assert (await cb.info()).state.running
        assert (await cb.metrics()).commands_executed_total >= 5
        # CodeBox plumbing with a stand-in python3 (the image has none)
        stdin_cmd = await cb._box.exec("sh", ["-c", "cat > /bin/python3; chmod +x /bin/python3"])
        w = stdin_cmd.stdin()
        await w.send_input(FAKE_PYTHON.encode())
        await w.close()
        assert (await stdin_cmd.wait()).exit_code == 0
        assert await cb.run("print('hi')") == "python got: print('hi')\n"
        script = tmp_path / "s.py"
        script.write_text("x = 1")
        assert await cb.run_script(str(script)) == "python got: x = 1\n"
        assert "pip: -m pip install a b" in await cb.install_packages("a", "b")
        box_id = cb.id
    assert await runtime.get(box_id) is None  # auto_remove


@pytest.mark.skipif("image_pull" not in features(),
                    reason="needs boxlite_image_pull and registries in "
                           "boxlite_runtime_options v2 (issue 3)")
async def test_seed_snippet_verbatim(tmp_path):
    script = tmp_path / "seed.py"
    script.write_text(SEED)
    env = dict(os.environ, PYTHONPATH=str(SITE))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello!\n\n"


@pytest.mark.skipif("image_pull" not in features(),
                    reason="needs boxlite_image_pull (issue 3) for the Debian+python image")
async def test_codebox_run_on_debian_python_image(runtime):
    image = os.environ.get("BOXLITE_TEST_PYTHON_IMAGE", "python:slim")
    async with boxlite.CodeBox(image=image, runtime=runtime) as cb:
        assert await cb.run("import sys; print(sys.version_info[0])") == "3\n"
