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
        if args[:1] == ("create",) and IMAGE in args and "--" not in args:
            # the test image's entrypoint is echo, and a box stops when its main process
            # ends: these boxes' main process sleeps instead
            i = args.index(IMAGE)
            args = (args[0], "--entrypoint", "/bin/sleep", *args[1:i + 1], "--", "100000",
                    *args[i + 1:])
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


# ---- repair never deletes a live layer ---------------------------------------------------------

def qcow2_backing(path):
    """The backing file named in a qcow2 header ("" when none)."""
    with open(path, "rb") as f:
        h = f.read(20)
        assert h[:4] == b"QFI\xfb", path
        off, size = int.from_bytes(h[8:16], "big"), int.from_bytes(h[16:20], "big")
        f.seek(off)
        return f.read(size).decode() if size else ""


def check_chains(c):
    """Every layer of every chain (each box's top, each snapshot's layer) exists, down to
    the base. Returns how many layers were walked."""
    walked = set()
    boxes = c.home / "boxes"
    roots = [d / "disk.qcow2" for d in boxes.iterdir() if not d.name.startswith(".")]
    roots += list(boxes.glob("*/snapshots/*/disk.qcow2"))
    for root in roots:
        cur = os.path.realpath(root)
        while cur and cur not in walked:
            assert os.path.exists(cur), f"{root}: layer {cur} of its chain is gone"
            walked.add(cur)
            cur = "" if cur.endswith(".ext4") else qcow2_backing(cur)
    return len(walked)


N_SNAPSHOTS = int(os.environ.get("BOXLITE_TEST_SNAPSHOTS", "150"))


def test_repair_keeps_every_layer_of_hundreds_of_snapshots_and_forks(scli):
    """A branchy history: N offline snapshots in a line, a restore to before them, then a
    full snapshot that forks rest on (the newest row, so the last walked). The newest layers
    are reachable only through snapshot links and forks. The old repair marked at most 4096
    layers (walking shared chains again per snapshot: N(N+1)/2 marks) and unlinked the rest
    on the next runtime open. Booted chains stay shallow: QEMU under TCG boots a chain of
    150 layers too slowly to test."""
    c = scli
    c.ok("create", "--name", "b", IMAGE)
    c.ok("start", "b")
    c.ok("exec", "b", "--", "sh", "-c", "echo first > /root/data; sync")
    c.ok("stop", "b")
    c.ok("snapshot", "create", "b", "d0")
    for i in range(N_SNAPSHOTS):
        c.ok("snapshot", "create", "b", f"s{i}")
    c.ok("snapshot", "restore", "b", "d0")
    c.ok("start", "b")
    c.ok("exec", "b", "--", "sh", "-c", "echo second > /root/data; sync")
    c.ok("snapshot", "create", "--memory", "b", "full")
    forks = c.ok("fork", "-n", "2", "--name", "f", "b", "full", timeout=600).split()
    assert len(forks) == 2
    for f in forks:
        c.ok("exec", f, "--", "sh", "-c", f"echo {f} > /root/mine; sync")
        c.ok("stop", f)
        for i in range(3):
            c.ok("snapshot", "create", f, f"fs{i}")
    c.ok("stop", "b")
    assert len(json.loads(c.ok("snapshot", "ls", "--format", "json", "b"))) == N_SNAPSHOTS + 2
    walked = check_chains(c)
    assert walked > N_SNAPSHOTS
    c.ok("ls")  # opens the runtime: the old code repaired every box here
    c.ok("snapshot", "ls", "b")
    assert check_chains(c) == walked
    for f in forks:  # repair runs for a box that is touched
        c.ok("start", f)
        assert c.ok("exec", f, "--", "cat", "/root/mine", "/root/data") == f"{f}\nsecond"
        c.ok("stop", f)
    c.ok("start", "b")
    assert c.ok("exec", "b", "--", "cat", "/root/data") == "second"
    c.ok("stop", "b")
    assert check_chains(c) == walked
    c.ok("snapshot", "restore", "b", f"s{N_SNAPSHOTS - 1}")
    deep = c.home / "boxes" / json.loads(c.ok("inspect", "b"))[0]["id"] / "disk.qcow2"
    r = subprocess.run(["qemu-img", "check", "-q", str(deep)], capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    names = {s["name"] for s in json.loads(c.ok("snapshot", "ls", "--format", "json", "b"))}
    assert names == {"d0", "full", *(f"s{i}" for i in range(N_SNAPSHOTS))}


# ---- each box pinned to its image; a store of the previous schema migrates -------------------

def test_a_box_keeps_its_image_when_the_tag_moves(scli, tmp_path):
    c = scli
    c.ok("create", "--name", "p", IMAGE)
    other = tmp_path / "other"
    (other / "etc").mkdir(parents=True)
    (other / "etc" / "other").write_text("another image\n")
    c.ok("import", str(other), IMAGE)  # the tag now names another image
    c.ok("start", "p")
    assert c.ok("exec", "p", "--", "sh", "-c", "echo $GREETING; pwd") == "from the image\n/data"
    c.ok("stop", "p")


OLD_CLI = pathlib.Path(os.environ.get("BOXLITE_OLD_CLI", "/work/main/build/src/cli/boxlite"))


def db_query(home, sql):
    import sqlite3
    con = sqlite3.connect(home / "boxlite.db")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


PREVIOUS_SCHEMA = 4  # the last schema without the pins (4: allow_net)
CURRENT_SCHEMA = 10  # 5: the pins, 6: accel, 7: image records in the database, 8: image_ref,
                     # 9: main process, auto_delete, 10: state_at (updated_at)


def downgrade_to_previous_schema(home):
    """What the previous schema was: the boxes table without the pins, and the image records
    as files images/refs/<sha256 of name>.json."""
    import hashlib
    import sqlite3
    con = sqlite3.connect(home / "boxlite.db")
    if con.execute("SELECT name FROM sqlite_master WHERE name = 'images'").fetchall():
        refs = home / "images" / "refs"
        refs.mkdir(exist_ok=True)
        for name, manifest, config, rootfs, size, created in con.execute(
                "SELECT name, manifest, config, rootfs, size, created FROM images"):
            (refs / (hashlib.sha256(name.encode()).hexdigest() + ".json")).write_text(
                json.dumps({"name": name, "manifest": manifest, "config": config,
                            "rootfs": rootfs, "size": size, "created": created}))
        con.execute("DROP TABLE images")
    have = {row[1] for row in con.execute("PRAGMA table_info(boxes)")}
    later = [c for c in ("image_id", "image_rootfs", "accel", "image_ref", "no_main", "exit_code",
                         "auto_delete", "stopped_at", "state_at") if c in have]
    con.executescript("DROP INDEX IF EXISTS boxes_image_rootfs;" +
                      "".join(f"ALTER TABLE boxes DROP COLUMN {c};" for c in later) +
                      f"PRAGMA user_version = {PREVIOUS_SCHEMA};")
    con.close()


def test_a_store_of_the_previous_schema_migrates_and_its_boxes_are_pinned(box_env, tmp_path,
                                                                         layout):
    """The store is made by the previous release's CLI when it is there (BOXLITE_OLD_CLI,
    default the main checkout's build) and still writes the previous schema; else by this
    one and taken back to the previous schema by hand."""
    home = tmp_path / "home"
    old = StoreCLI(box_env, home, OLD_CLI if OLD_CLI.exists() else BOXLITE)
    old.ok("import", str(layout), IMAGE)
    old.ok("create", "--name", "old", IMAGE)
    old.ok("start", "old")
    old.ok("exec", "old", "--", "sh", "-c", "echo kept > /root/data; sync")
    old.ok("stop", "old")
    old.ok("snapshot", "create", "old", "s1")
    old.ok("create", "--name", "fresh", IMAGE)
    if db_query(home, "PRAGMA user_version")[0][0] != PREVIOUS_SCHEMA:
        downgrade_to_previous_schema(home)
    assert db_query(home, "PRAGMA user_version") == [(PREVIOUS_SCHEMA,)]
    assert len(list((home / "images" / "refs").iterdir())) == 1
    new = StoreCLI(box_env, home)
    assert {b["name"] for b in json.loads(new.ok("ls", "--format", "json"))} == {"old", "fresh"}
    assert db_query(home, "PRAGMA user_version") == [(CURRENT_SCHEMA,)]
    # the image records moved into the database; their files are gone
    assert [r[0] for r in db_query(home, "SELECT name FROM images")] == [IMAGE]
    assert not (home / "images" / "refs").exists()
    assert "used by" in refused(new, "rmi", IMAGE)  # pins the old rows from their chains
    hexid = new.images()[IMAGE]["id"][7:]
    assert sorted(db_query(home, "SELECT name, image_id, image_rootfs FROM boxes")) == [
        ("fresh", "sha256:" + hexid, hexid), ("old", "sha256:" + hexid, hexid)]
    # rows from before schema 7 have no reference as written: info shows the resolved name
    assert db_query(home, "SELECT image_ref FROM boxes") == [(None,), (None,)]
    new.ok("start", "old")
    assert new.ok("exec", "old", "--", "sh", "-c", "cat /root/data; echo $GREETING") == \
        "kept\nfrom the image"
    new.ok("stop", "old")


# ---- repair off the read path; doctor ---------------------------------------------------------

def doctor(c, *args):
    r = c.run("doctor", *args)
    return r.returncode, r.stdout.decode()


def test_doctor_reports_and_fixes_what_opening_the_runtime_leaves_alone(scli):
    c = scli
    bid = c.ok("create", "--name", "d", IMAGE)
    c.ok("snapshot", "create", "d", "s")
    bdir = c.home / "boxes" / bid
    layer = next((bdir / "layers").iterdir())
    orphan = bdir / "layers" / "orphan00000.qcow2"
    orphan.write_bytes(layer.read_bytes())
    half = c.home / "boxes" / ".new-halfmade0000"
    half.mkdir()
    c.ok("inspect", "d")
    c.ok("images")
    assert orphan.exists() and half.exists(), "opening the runtime repairs nothing"
    rc, text = doctor(c)
    assert rc == 1 and "orphan00000.qcow2: nothing rests on it" in text and "(fixed)" not in text
    assert ".new-halfmade0000: left half made" in text
    assert orphan.exists() and half.exists()
    rc, text = doctor(c, "--fix")
    assert rc == 0 and text.count("(fixed)") == 2, text
    assert not orphan.exists() and not half.exists()
    assert doctor(c) == (0, "no problems found\n")
    # a box that is touched is mended without doctor; listing boxes finishes half-made ones
    for touch in [("snapshot", "create", "d", "t"), ("snapshot", "ls", "d")]:
        orphan.write_bytes(layer.read_bytes())
        c.ok(*touch)
        assert not orphan.exists(), touch
    half.mkdir()
    c.ok("ls")
    assert not half.exists()
    # a remove that failed halfway: moved aside with its row still there → moved back; with
    # no row left → dropped; a directory nothing marks and no row names → reported, kept
    (c.home / "boxes" / bid).rename(c.home / "boxes" / (".rm-" + bid))
    gone = c.home / "boxes" / ".rm-removed00000"
    gone.mkdir()
    stray = c.home / "boxes" / "unrecorded00"
    stray.mkdir()
    c.ok("ls")
    assert bdir.exists() and not gone.exists() and c.ok("inspect", "d")
    rc, text = doctor(c, "--fix")
    assert rc == 1 and "unrecorded00: a box directory no record names" in text, text
    assert stray.exists()
    stray.rmdir()
    assert doctor(c) == (0, "no problems found\n")
    # a base left by rmi -f once its last box is gone
    base = c.base_of(IMAGE)
    c.ok("rmi", "-f", IMAGE)
    assert base.exists()
    assert doctor(c) == (0, "no problems found\n")  # d still rests on it
    c.ok("rm", "d")
    rc, text = doctor(c)
    assert rc == 1 and f"image base {base.name[:-5]}: no image and no box uses it" in text
    assert doctor(c, "--fix")[0] == 0 and not base.exists()
    assert doctor(c) == (0, "no problems found\n")


# ---- stop says when it had to kill ------------------------------------------------------------

def test_stop_reports_a_kill_and_remove_force_heeds_stop(box_env, tmp_path):
    env = dict(box_env, BOXLITE_HOME=str(tmp_path / "home"))
    r = subprocess.run([str(BOXLITE.parent.parent.parent / "tests" / "api" / "stop")],
                       capture_output=True, env=env, timeout=600)
    assert r.returncode == 0 and r.stdout == b"ok\n", r.stdout.decode() + r.stderr.decode()


def test_an_imported_box_is_pinned_and_its_clone_stands_alone(scli, tmp_path):
    c = scli
    c.ok("create", "--name", "src", IMAGE)
    c.ok("snapshot", "create", "src", "s")
    arch = tmp_path / "src.boxlite"
    c.ok("export", "src", str(arch))
    c.ok("import-box", "--name", "imp", str(arch))
    hexid = c.images()[IMAGE]["id"][7:]
    pins = dict((n, (i, r)) for n, i, r in
                db_query(c.home, "SELECT name, image_id, image_rootfs FROM boxes"))
    assert pins["imp"] == ("sha256:" + hexid, "")  # its disk stands alone; its config is pinned
    c.ok("clone", "imp", "imp2")
    c.ok("rm", "src", "imp")
    assert c.ok("rmi", IMAGE) == IMAGE  # nothing rests on the base now
    c.ok("start", "imp2")
    assert c.ok("exec", "imp2", "--", "sh", "-c", "echo $GREETING") == "from the image"
    c.ok("stop", "imp2")
