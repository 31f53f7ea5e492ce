"""test_python_snapshots.py — box.snapshot, clone_box, fork, export and import_box on real VMs. The
tests run in file order on one box (a handful of boots in all): checkpoint, rm -rf /usr,
restore; a full snapshot resuming a counting process; a fork; a clone's independence; export,
remove, import; tampered archives refused; and the sync twins with no boot at all."""
import asyncio
import io
import os
import subprocess
import sys
import tarfile
import textwrap
import time

import pytest

import boxlite

COUNTER = 'i=0; while true; do i=$((i+1)); echo "$$ $i" > /dev/shm/count; sleep 0.2; done'


async def sh(box, script):
    """Run sh -c script in the box; (exit code, stdout)."""
    ex = await box.exec("sh", ["-c", script])
    out = "".join([line async for line in ex.stdout()])
    return (await ex.wait()).exit_code, out


async def ok(box, script):
    code, out = await sh(box, script)
    assert code == 0, (script, code, out)
    return out.strip()


async def count(box):
    """(pid, count) of the counter; the file is rewritten in place, so an empty read is
    retried."""
    script = ('for t in 1 2 3 4 5 6 7 8 9 10; do c=$(cat /dev/shm/count); '
              '[ -n "$c" ] && break; sleep 0.1; done; echo "$c"')
    pid, n = (await ok(box, script)).split()
    return int(pid), int(n)


@pytest.fixture(scope="module")
def state(runtime, tmp_path_factory):
    """One box for the whole file (auto_remove off: it is stopped and restored many times),
    and what the tests hand on to each other."""
    box = asyncio.run(runtime.create(boxlite.BoxOptions(image="default", auto_remove=False),
                                     name="snap-py"))
    st = {"box": box, "made": [], "dir": str(tmp_path_factory.mktemp("snap-export"))}
    yield st
    for b in st["made"] + [box]:
        try:
            asyncio.run(runtime.remove(b.id, force=True))
        except RuntimeError:
            pass


@pytest.mark.asyncio
async def test_checkpoint_rm_rf_usr_stop_restore(state):
    box = state["box"]
    await box.start()
    await ok(box, "echo precious > /root/data; sync")
    snap = await box.snapshot.create("before")  # online: frozen for the cut
    assert (snap.name, snap.kind, snap.box_id, snap.parent) == ("before", "disk", box.id, None)
    assert abs(snap.created_at - time.time()) < 600 and snap.created_at_rfc3339.endswith("Z")
    await ok(box, "rm -rf /usr /root/data; sync")
    assert (await sh(box, "ls /usr"))[0] != 0
    with pytest.raises(boxlite.InvalidStateError, match="stop"):
        await box.snapshot.restore("before")  # the box must be stopped
    await box.stop()
    await box.snapshot.restore("before")
    # while stopped: a clone of the restored disk and an archive of it, for the tests below
    clone = await box.clone_box(name="snap-py-clone")
    state["made"].append(clone)
    state["clone"] = clone
    state["archive"] = await box.export(dest=state["dir"])
    assert state["archive"] == os.path.join(state["dir"], "snap-py.boxlite")
    await box.start()
    assert await ok(box, "cat /root/data") == "precious"
    assert await ok(box, "test -d /usr/bin && echo yes") == "yes"
    [listed] = await box.snapshot.list()
    assert (listed.id, listed.name, listed.created_at) == (snap.id, "before", snap.created_at)
    assert listed.size == listed.size_bytes and listed.size > 0
    assert (await box.snapshot.get("before")).id == snap.id
    assert await box.snapshot.get("nope") is None


@pytest.mark.asyncio
async def test_full_snapshot_restore_keeps_the_running_process(state):
    box = state["box"]
    counter = await box.exec("sh", ["-c", COUNTER])
    await asyncio.sleep(1.5)
    live = await box.snapshot.create("live", memory=True)
    assert live.kind == "full"
    pid, at_snap = await count(box)
    await box.stop()
    with pytest.raises(RuntimeError, match="stopped before the process ended"):
        await counter.wait()
    await box.snapshot.restore("live")  # resumes the box
    assert box.info().state.running
    pid2, n = await count(box)
    assert pid2 == pid and 0 < n <= at_snap + 3  # the same process, from where it was
    await asyncio.sleep(1)
    assert (await count(box))[1] > n  # and it goes on counting
    assert abs(int(await ok(box, "date +%s")) - time.time()) < 5  # clock stepped to now
    kinds = {s.name: (s.kind, s.parent) for s in await box.snapshot.list()}
    before = await box.snapshot.get("before")
    assert kinds == {"before": ("disk", None), "live": ("full", before.id)}
    state["pid"] = pid


@pytest.mark.asyncio
async def test_fork_resumes_with_a_fresh_identity(state, runtime):
    box = state["box"]
    [fork] = await box.fork("live", name="snap-py-fork")
    state["made"].append(fork)
    assert fork.id != box.id and fork.name == "snap-py-fork"
    assert fork.info().state.running
    assert (await count(fork))[0] == state["pid"]  # the forked process runs on
    assert await ok(fork, "hostname") == "snap-py-fork"
    mac = "cat /sys/class/net/eth0/address"
    assert await ok(fork, mac) != await ok(box, mac)
    # the snapshot cannot go while a fork rests on it
    await box.stop()
    with pytest.raises(boxlite.InvalidStateError):
        await box.snapshot.remove("live")
    await runtime.remove(fork.id, force=True)
    await box.snapshot.remove("live")
    assert [s.name for s in await box.snapshot.list()] == ["before"]
    with pytest.raises(ValueError, match="count"):
        await box.fork("before", count=0)


@pytest.mark.asyncio
async def test_clone_is_independent(state):
    box, clone = state["box"], state["clone"]
    assert clone.id != box.id and clone.name == "snap-py-clone"
    await box.start()
    await ok(box, "echo source-only > /root/source-only; sync")
    await clone.start()
    assert await ok(clone, "cat /root/data") == "precious"  # as of the clone
    assert (await sh(clone, "test -e /root/source-only"))[0] != 0
    await ok(clone, "echo mine > /root/data; echo c > /root/clone-only; sync")
    assert await ok(box, "cat /root/data") == "precious"
    assert (await sh(box, "test -e /root/clone-only"))[0] != 0
    await clone.stop()
    await box.stop()
    with pytest.raises(TypeError, match="CloneOptions"):
        await box.clone_box(options=boxlite.ExportOptions())


@pytest.mark.asyncio
async def test_export_remove_import_brings_files_back(state, runtime):
    box, archive = state["box"], state["archive"]
    assert os.path.getsize(archive) > 0
    await runtime.remove(box.id, force=True)
    assert await runtime.get("snap-py") is None
    new = await runtime.import_box(archive, name="snap-py")
    state["box"] = new
    assert new.id != box.id and new.name == "snap-py"
    await new.start()
    assert await ok(new, "cat /root/data") == "precious"
    assert await ok(new, "test -d /usr/bin && echo yes") == "yes"
    await new.stop()


def write_archive(path, members):
    with tarfile.open(path, "w") as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))


@pytest.mark.asyncio
async def test_untrusted_import_of_tampered_archives_is_refused(state, runtime, tmp_path):
    with tarfile.open(state["archive"]) as t:
        manifest = t.extractfile("manifest.json").read()
        disk = t.extractfile("disk.qcow2").read()
    flipped = bytearray(disk)
    flipped[len(flipped) // 2] ^= 1
    bad = tmp_path / "flipped.boxlite"
    write_archive(bad, [("manifest.json", manifest), ("disk.qcow2", bytes(flipped))])
    extra = tmp_path / "extra.boxlite"
    write_archive(extra, [("manifest.json", manifest), ("disk.qcow2", disk), ("x", b"1")])
    before = [b.id for b in await runtime.list_info()]
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        await runtime.import_box(str(bad), name="bad-flipped", untrusted=True)
    with pytest.raises(RuntimeError, match="unexpected member"):
        await runtime.import_box(str(extra), untrusted=True)
    with pytest.raises(RuntimeError, match="no-such"):
        await runtime.import_box(str(tmp_path / "no-such.boxlite"))
    assert [b.id for b in await runtime.list_info()] == before


SYNC_SCRIPT = textwrap.dedent("""\
    import os
    import sys
    from boxlite import BoxOptions, Options, SnapshotOptions, SyncBoxlite

    with SyncBoxlite(Options(home_dir=sys.argv[1])) as rt:
        box = rt.create(BoxOptions(image="default", auto_remove=False), name="sync-snap")
        s = box.snapshot.create("s1")  # offline, never booted: no VM at all
        assert (s.name, s.kind) == ("s1", "disk"), s
        box.snapshot.create("s2", options=SnapshotOptions())
        assert [x.name for x in box.snapshot.list()] == ["s1", "s2"]
        assert box.snapshot.get("s2").parent == s.id
        clone = box.clone_box(name="sync-clone")
        assert rt.get("sync-clone").id == clone.id
        path = box.export(dest=os.path.join(sys.argv[2], "x.boxlite"))
        assert path.endswith("x.boxlite") and os.path.getsize(path) > 0
        box.snapshot.remove("s1")
        box.snapshot.restore("s2")
        assert [x.name for x in box.snapshot.list()] == ["s2"]
        imported = rt.import_box(path, untrusted=True)
        assert imported.id not in (box.id, clone.id)
        for b in (box, clone, imported):
            rt.remove(b.id)
    print("sync snapshots ok")
    """)


def test_sync_snapshot_clone_export_import(py_home, tmp_path):
    script = tmp_path / "sync_snap.py"
    script.write_text(SYNC_SCRIPT)
    site = os.path.dirname(os.path.dirname(boxlite.__file__))
    env = dict(os.environ, PYTHONPATH=site)
    r = subprocess.run([sys.executable, str(script), str(py_home), str(tmp_path)],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and "sync snapshots ok" in r.stdout, (r.stdout, r.stderr)
