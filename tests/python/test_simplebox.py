"""test_simplebox.py — SimpleBox and CodeBox on the built-in image (one boot); images.pull
and list, the seed's snippet verbatim and CodeBox on the Debian + python3 image served as
python:slim by a local docker-registry with search on."""
import datetime
import os
import subprocess
import sys
import textwrap

import pytest

import boxlite
import registry_fixture as rf  # tests/ is on sys.path (conftest.py)

SITE = __import__('pathlib').Path(boxlite.__file__).resolve().parent.parent

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
        with pytest.raises(boxlite.TimeoutError, match="'sleep 60' timed out after 1 seconds"):
            await cb.exec("sleep", "60", timeout=1)  # as BoxLite: raised, the process ended
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


async def test_images_pull_and_list(python_runtime, python_registry):
    host = python_registry.host
    r = await python_runtime.images.pull("python:slim")  # a short name, via the search registry
    assert r.reference == "python:slim"  # as written, whichever registry served it
    assert r.name == f"{host}/library/python:slim"
    assert r.config_digest.startswith("sha256:") and len(r.config_digest) == 71
    assert r.layer_count == 3  # Debian rootfs, app layer, /usr/local/bin/python
    images = await python_runtime.images.list()
    mine = [i for i in images if i.repository == f"{host}/library/python"]
    assert len(mine) == 1 and mine[0].tag == "slim" and mine[0].id == r.config_digest
    assert mine[0].reference == f"{host}/library/python:slim"
    assert mine[0].cached_at.endswith("+00:00")  # RFC 3339, as BoxLite's
    assert datetime.datetime.fromisoformat(mine[0].cached_at).year >= 2024
    with pytest.raises(RuntimeError, match="no-such-image"):
        await python_runtime.images.pull(f"{host}/no-such-image:1")


async def test_seed_snippet_verbatim(tmp_path, registry_home):
    """The issue's snippet, as a script: the runtime finds the registry (search on) through
    $BOXLITE_HOME/registries.json, since the snippet passes no options."""
    script = tmp_path / "seed.py"
    script.write_text(SEED)
    env = dict(os.environ, PYTHONPATH=str(SITE), BOXLITE_HOME=str(registry_home))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello!\n\n"


async def test_codebox_on_debian_python_image(python_runtime, tmp_path):
    async with boxlite.CodeBox(runtime=python_runtime) as cb:  # image python:slim
        assert await cb.run("import sys; print(sys.version_info[0])") == "3\n"
        assert "bookworm" in await cb.run("print(open('/etc/os-release').read())")
        script = tmp_path / "script.py"
        script.write_text("import json\nprint(json.dumps({'sum': sum(range(10))}))\n")
        assert await cb.run_script(str(script)) == '{"sum": 45}\n'
        # The image has no pip (python3-pip is not in it) and no PyPI is reachable here:
        # install_package runs `python3 -m pip install` and reports the failure.
        with pytest.raises(boxlite.ExecError) as e:
            await cb.install_package("requests")
        assert e.value.exit_code != 0 and "No module named pip" in e.value.stderr
        assert "pip install requests" in e.value.command


async def test_rootfs_path_imports_a_local_oci_layout(runtime, tmp_path):
    gz, _, _ = rf.build_busybox(tmp_path)  # the busybox test image as an OCI layout dir
    # its entrypoint (echo) ends at once, and the box with it (BoxLite's rule): a shell
    # waiting on its stdin keeps this one up
    async with boxlite.SimpleBox(rootfs_path=str(gz), runtime=runtime,
                                 entrypoint=["/bin/sh"], cmd=[]) as sb:
        assert sb.info().image == boxlite._common.rootfs_image_name(str(gz))
        assert sb.info().image.startswith("localhost/busybox-oci-")
        r = await sb.exec("sh", "-c", "cat /etc/os-release; pwd; echo $GREETING")
        assert r.stdout == ('PRETTY_NAME="boxlite busybox test"\nID=busybox\n'
                            "/data\nfrom the image\n"), r.stderr
    names = [i.repository for i in await runtime.images.list()]
    assert any(n.startswith("localhost/busybox-oci-") for n in names), names
