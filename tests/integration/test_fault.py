"""test_fault.py — fault injection in SQLite's style (docs/testing.md): each store operation
(create, clone, import-box, snapshot create/rm/restore, export, image import, rm, rmi, fork) is
run by boxlite-faulty with one of its counted calls (an allocation, write, fsync, rename,
create, SQLite or libarchive call, a qemu-img run) failing, swept over the operation's calls.
After each the operation either succeeded or failed cleanly (exit 125, a "boxlite:" message, no
crash), and with the normal CLI the store is whole: `doctor --fix` mends everything, `doctor`
then finds nothing, `ls` lists exactly the boxes that should exist, the source box's disk
reads exactly as before, its snapshots are all listed, and no staging file is left. At the
end the source box still boots with its file, and a snapshot still restores.

BOXLITE_FAULT_POINTS (default 60) bounds the points per operation (all of them when there are
fewer; else spread evenly plus the last 10), BOXLITE_FAULT_FORK_POINTS (default 30) those of
fork, BOXLITE_FAULT_SECONDS (default 150) the time per operation; `make fault` tries them all."""
import json
import math
import os
import pathlib
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import registry_fixture as rf  # noqa: E402
from boxlite_paths import BOXLITE, BUILD  # noqa: E402

FAULTY = BUILD / "tests" / "fault" / "boxlite-faulty"
IMAGE = "localhost/fault:1"
POINTS = int(os.environ.get("BOXLITE_FAULT_POINTS", "60"))
SECONDS = float(os.environ.get("BOXLITE_FAULT_SECONDS", "150"))
JUNK = (".new-", ".export-", ".rm-", ".tmp.", "memory.tmp")
KEPT = b"the box is recorded and kept: doctor --fix finishes it"
MAYBE = b"the box may be recorded: doctor --fix finishes or drops it"

pytestmark = pytest.mark.skipif(not FAULTY.exists(),
                                reason="built with -Dfault_injection=false")


class Store:
    """One home, run by the normal CLI and by boxlite-faulty."""

    def __init__(self, base_env, home):
        self.env = dict(base_env, BOXLITE_HOME=str(home))
        for k in ("BOXLITE_FAULT_AT", "BOXLITE_FAULT_PERSIST", "BOXLITE_FAULT_COUNT"):
            self.env.pop(k, None)
        self.home = pathlib.Path(home)

    def run(self, *args, timeout=300, binary=BOXLITE, extra=None):
        return subprocess.run([str(binary), *args], capture_output=True, timeout=timeout,
                              env=dict(self.env, **(extra or {})))

    def ok(self, *args, timeout=300):
        r = self.run(*args, timeout=timeout)
        assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
        return r.stdout.decode().strip()

    def faulty(self, args, at=0, count=False, persist=False):
        extra = {"BOXLITE_FAULT_AT": str(at), "BOXLITE_FAULT_PERSIST": "1" if persist else "0"}
        if count:
            extra["BOXLITE_FAULT_COUNT"] = "1"
        return self.run(*args, binary=FAULTY, extra=extra, timeout=600)

    def count(self, args):
        r = self.faulty(args, count=True)
        assert r.returncode == 0, (args, r.stderr[-2000:])
        line = [x for x in r.stderr.decode().splitlines() if x.startswith("boxlite-fault: count")]
        return int(line[-1].split()[-1])

    def boxes(self):
        return {b["name"] for b in json.loads(self.ok("ls", "-a", "--format", "json"))}

    def snaps(self, box="src"):
        return {s["name"] for s in json.loads(self.ok("snapshot", "ls", "--format", "json", box))}

    def images(self):
        return {i["name"] for i in json.loads(self.ok("images", "--format", "json"))}

    def disk(self, box="src"):
        return self.home / "boxes" / json.loads(self.ok("inspect", box))[0]["id"] / "disk.qcow2"


@pytest.fixture(scope="module")
def store(box_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fault")
    gz, _, _ = rf.build_busybox(tmp / "image")
    s = Store(box_env, tmp / "home")
    s.layout = gz
    s.ok("import", str(gz), IMAGE)
    # the image's entrypoint is echo: its main process would end (and stop) the box at once
    s.ok("create", "--name", "src", "--entrypoint", "/bin/sleep", IMAGE, "--", "100000")
    s.ok("start", "src", timeout=600)
    try:
        s.ok("exec", "src", "--", "sh", "-c", "echo precious > /root/data; sync")
        s.ok("snapshot", "create", "--memory", "src", "full", timeout=600)
    finally:
        s.ok("stop", "src", timeout=300)
    s.ok("snapshot", "create", "src", "cold")
    # what src's disk reads, flattened: every check compares against it
    s.ref = tmp / "ref.qcow2"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "qcow2", str(s.disk()), str(s.ref)],
                   check=True, timeout=300)
    s.archive = tmp / "src.boxlite"
    s.ok("export", "src", str(s.archive), timeout=600)
    s.snaps0 = s.snaps()
    assert s.snaps0 == {"full", "cold"}
    yield s
    for b in s.boxes():
        s.run("stop", "-t", "1", b)


def points(n, limit):
    """1..n when they are few; else limit points spread over them, the last ones included."""
    if n <= limit:
        return list(range(1, n + 1))
    tail = min(10, limit // 3)
    step = n / (limit - tail)
    return sorted({1 + math.floor(i * step) for i in range(limit - tail)} |
                  set(range(n - tail + 1, n + 1)))


def junk(home):
    return [str(p) for p in home.rglob("*") if any(j in p.name for j in JUNK)]


def check_store(s, what, boxes, images):
    """The store is whole after `what`: mendable, exact, and src reads as before."""
    r = s.run("doctor", "--fix")
    assert r.returncode == 0, (what, "doctor --fix", r.stdout, r.stderr)
    r = s.run("doctor")
    assert r.returncode == 0 and b"no problems found" in r.stdout, (what, r.stdout, r.stderr)
    assert s.boxes() in (boxes if isinstance(boxes, list) else [boxes]), what
    assert s.snaps() >= s.snaps0, what
    assert IMAGE in s.images() and s.images() <= images, what
    c = subprocess.run(["qemu-img", "compare", "-U", str(s.ref), str(s.disk())],
                       capture_output=True, timeout=300)
    assert c.returncode == 0, (what, "src's disk changed", c.stdout, c.stderr)
    assert not junk(s.home), (what, junk(s.home))


def failed_cleanly(r, what):
    err = r.stderr.decode(errors="replace")
    assert r.returncode in (0, 125), (what, r.returncode, err[-2000:])
    if r.returncode == 125:
        assert err.startswith("boxlite: ") or "\nboxlite: " in err, (what, err[-2000:])
    return r.returncode == 0


def sweep(s, name, args, made=lambda ok: set(), before=None, undo=None, images=frozenset(),
          after=None, limit=None, persist=False):
    """Run args with each chosen point failing (and with persist, every call after it too);
    check the store after each."""
    if before:
        before()
    n = s.count(args)
    if undo:
        undo()
    deadline = time.monotonic() + SECONDS
    tried = failed = 0
    for at in points(n, limit or POINTS):
        if time.monotonic() > deadline:
            break
        if before:
            before()
        what = f"{name} with call {at}/{n} failing"
        try:
            r = s.faulty(args, at=at, persist=persist)
            ok = failed_cleanly(r, what)
            failed += not ok
            if after:
                after(ok, what)
            # a failure whose own undo failed too may keep what it made, if it says so
            # (persistent faults: the record could not be taken back); repair finishes it
            m = made(ok or KEPT in r.stderr)
            if MAYBE in r.stderr:
                m = [made(False), made(True)]
            boxes = [{"src"} | b for b in m] if isinstance(m, list) else {"src"} | m
            check_store(s, what, boxes, {IMAGE} | set(images))
        finally:  # the next test starts from the same store, whatever happened here
            if undo:
                undo()
        tried += 1
    assert tried >= min(n, 5), (name, tried, n)
    assert failed > 0, (name, "no injected fault made it fail: is the injector wired?")
    print(f"{name}: {tried} of {n} calls failed in turn, {failed} times the operation failed")


def rm(s, *boxes):
    for b in boxes:
        if b in s.boxes():
            s.ok("rm", "-f", b)


def test_create(store):
    sweep(store, "create", ["create", "--name", "n", IMAGE],
          made=lambda ok: {"n"} if ok else set(), undo=lambda: rm(store, "n"))


def test_create_persistent(store):
    """SQLite's persistent mode: from the point on every call fails, clean-up included."""
    sweep(store, "create (persistent)", ["create", "--name", "n", IMAGE], persist=True,
          made=lambda ok: {"n"} if ok else set(), undo=lambda: rm(store, "n"))


def test_snapshot_create_persistent(store):
    def undo():
        if "s" in store.snaps():
            store.ok("snapshot", "rm", "src", "s")
    sweep(store, "snapshot create (persistent)", ["snapshot", "create", "src", "s"],
          persist=True, undo=undo)


def test_clone(store):
    sweep(store, "clone", ["clone", "src", "c"],
          made=lambda ok: {"c"} if ok else set(), undo=lambda: rm(store, "c"))


def test_import_box(store):
    sweep(store, "import-box", ["import-box", "--name", "ib", str(store.archive)],
          made=lambda ok: {"ib"} if ok else set(), undo=lambda: rm(store, "ib"))


def test_snapshot_create(store):
    def undo():
        if "s" in store.snaps():
            store.ok("snapshot", "rm", "src", "s")
    sweep(store, "snapshot create", ["snapshot", "create", "src", "s"], undo=undo)


def test_snapshot_rm(store):
    def before():
        if "gone" not in store.snaps():
            store.ok("snapshot", "create", "src", "gone")
    sweep(store, "snapshot rm", ["snapshot", "rm", "src", "gone"], before=before)


def test_snapshot_restore(store):
    sweep(store, "snapshot restore", ["snapshot", "restore", "src", "cold"])


def test_export(store):
    out = store.home.parent / "out.boxlite"

    def undo():
        if out.exists():
            out.unlink()

    def after(ok, what):  # a failed export leaves no half-written archive, nor its staging
        assert ok == out.exists(), (what, ok, out)
        assert not list(out.parent.glob(out.name + ".tmp.*")), (what, "staging left")
    sweep(store, "export", ["export", "src", str(out)], undo=undo, after=after)


def test_image_import(store):
    def undo():
        if "localhost/other:1" in store.images():
            store.ok("rmi", "localhost/other:1")
    sweep(store, "image import", ["import", str(store.layout), "localhost/other:1"],
          undo=undo, images={"localhost/other:1"})


def test_fork(store):
    """Each point that lets the fork through boots a VM from the memory snapshot, so fewer
    points (BOXLITE_FAULT_FORK_POINTS, default 30); a failed fork leaves no VM running."""
    home = str(store.home)

    def after(ok, what):
        if not ok:
            p = subprocess.run(["pgrep", "-f", home], capture_output=True, text=True)
            assert not p.stdout.strip(), (what, "a failed fork left", p.stdout)
    sweep(store, "fork", ["fork", "--name", "k", "src", "full"],
          made=lambda ok: {"k-1"} if ok else set(), undo=lambda: rm(store, "k-1"),
          after=after, limit=int(os.environ.get("BOXLITE_FAULT_FORK_POINTS", "30")))


def test_rm(store):
    """A failed rm may have gone through or not, but never halfway."""
    def before():
        if "victim" not in store.boxes():
            store.ok("clone", "src", "victim")
    sweep(store, "rm", ["rm", "victim"], before=before,
          made=lambda ok: set() if ok else [set(), {"victim"}],
          undo=lambda: rm(store, "victim"))


def test_rmi(store):
    def before():
        if "localhost/other:1" not in store.images():
            store.ok("import", str(store.layout), "localhost/other:1")
    sweep(store, "rmi", ["rmi", "localhost/other:1"], before=before,
          images={"localhost/other:1"})


def test_zz_source_box_starts_and_snapshots_restore(store):
    """After every sweep: src restores its disk snapshot, boots and holds its file; its memory
    snapshot restores too (the box resumes running) with the file."""
    s = store
    s.ok("snapshot", "restore", "src", "cold")
    s.ok("start", "src", timeout=600)
    try:
        assert s.ok("exec", "src", "--", "cat", "/root/data") == "precious"
    finally:
        s.ok("stop", "src", timeout=300)
    s.ok("snapshot", "restore", "src", "full", timeout=600)
    try:
        assert s.ok("exec", "src", "--", "cat", "/root/data") == "precious"
    finally:
        s.ok("stop", "src", timeout=300)
