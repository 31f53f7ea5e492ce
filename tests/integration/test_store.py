"""test_store.py — the store keeps what users have: an image is never removed from under a
box, a snapshot, a fork or a clone (rmi refused; rmi -f drops only the name); repair never
deletes a layer any chain still reaches, however many snapshots and forks there are; a box
is pinned to the image it was made from; a store made by the previous release migrates."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import registry_fixture as rf  # noqa: E402
from boxlite_paths import BOXLITE  # noqa: E402

IMAGE = "localhost/store:1"


class StoreCLI:
    """The CLI on a home of its own."""

    def __init__(self, base_env, home, binary=BOXLITE):
        self.env = dict(base_env)
        self.env["BOXLITE_HOME"] = str(home)
        self.home = pathlib.Path(home)
        self.binary = str(binary)

    def run(self, *args, timeout=300):
        return subprocess.run([self.binary, *args], capture_output=True, timeout=timeout,
                              env=self.env)

    def ok(self, *args, timeout=300):
        r = self.run(*args, timeout=timeout)
        assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
        return r.stdout.decode().strip()

    def images(self):
        return {i["name"]: i for i in json.loads(self.ok("images", "--format", "json"))}

    def base_of(self, name):
        return self.home / "images" / "rootfs" / (self.images()[name]["id"][7:] + ".ext4")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    gz, _, _ = rf.build_busybox(tmp_path_factory.mktemp("store-image"))
    return gz


@pytest.fixture
def scli(box_env, tmp_path, layout):
    c = StoreCLI(box_env, tmp_path / "home")
    c.ok("import", str(layout), IMAGE)
    yield c
    for b in json.loads(c.ok("ls", "--format", "json")):
        c.run("stop", "-t", "1", b["id"])


def refused(c, *args):
    r = c.run(*args)
    assert r.returncode != 0, (args, r.stdout, r.stderr)
    return r.stderr.decode()


# ---- rmi never takes a base from under a box --------------------------------------------------

def test_rmi_refused_while_a_snapshot_fork_or_clone_rests_on_the_image(scli):
    c = scli
    base = c.base_of(IMAGE)
    c.ok("create", "--name", "a", IMAGE)
    c.ok("start", "a")
    c.ok("exec", "a", "--", "sh", "-c", "echo precious > /root/data; sync")
    c.ok("snapshot", "create", "--memory", "a", "full")
    assert c.ok("fork", "--name", "f", "a", "full", timeout=600)
    assert c.ok("exec", "f-1", "--", "cat", "/root/data") == "precious"
    c.ok("stop", "f-1")
    c.ok("stop", "a")
    # a (its top rests on its snapshot's layer) and f (on a's layer): neither names the base
    assert "used by" in refused(c, "rmi", IMAGE)
    assert base.exists() and IMAGE in c.images()
    c.ok("rm", "-f", "f-1")
    assert "used by" in refused(c, "rmi", IMAGE)  # a alone, snapshotted
    assert base.exists()
    c.ok("clone", "a", "c")
    c.ok("snapshot", "create", "c", "c1")
    c.ok("rm", "-f", "a")
    assert "used by" in refused(c, "rmi", IMAGE)  # the clone alone, snapshotted
    assert base.exists()
    # rmi -f drops the name only: the base stays while a box rests on it, and the box runs
    # on without the image's record (its config is pinned, nothing is pulled)
    assert c.ok("rmi", "-f", IMAGE) == IMAGE
    assert IMAGE not in c.images() and base.exists()
    c.ok("start", "c")
    assert c.ok("exec", "c", "--", "cat", "/root/data") == "precious"
    assert c.ok("exec", "c", "--", "sh", "-c", "echo $GREETING") == "from the image"
    c.ok("stop", "c")


def test_rmi_of_an_unused_image_removes_its_base(scli):
    c = scli
    base = c.base_of(IMAGE)
    c.ok("create", "--name", "gone", IMAGE)
    c.ok("snapshot", "create", "gone", "s")
    assert "used by" in refused(c, "rmi", IMAGE)
    c.ok("rm", "gone")
    assert c.ok("rmi", IMAGE) == IMAGE
    assert not base.exists() and c.images() == {}
