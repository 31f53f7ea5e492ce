"""test_python_import_boxlite.py — issue #15 item 9 as a BoxLite program meets it:
`Boxlite.import_box(path)` takes an archive BoxLite itself exported (built as BoxLite writes one:
tests/boxlite_archive.py), the box boots with its files, options and main process; a tampered
one raises RuntimeError with the reason and leaves the box list as it was."""
import json

import pytest

import boxlite
from boxlite_archive import boxlite_archive, container_disk, manifest, options

pytestmark = pytest.mark.asyncio


async def run(box, *argv):
    ex = await box.exec(argv[0], list(argv[1:]))
    out = "".join([line async for line in ex.stdout()])
    return (await ex.wait()).exit_code, out


@pytest.fixture
def boxlite_disk(shared_box, py_home, tmp_path):
    """BoxLite's container disk of the built-in image (its ext4 base made by shared_box)."""
    bases = sorted((py_home / "images" / "rootfs").glob("*.ext4"))
    assert bases, "no image base in the store"
    d = tmp_path / "disk"
    d.mkdir()
    return container_disk(bases[0], d)


async def test_import_box_takes_an_archive_boxlite_exported(runtime, boxlite_disk, tmp_path):
    arch = boxlite_archive(tmp_path / "box.boxlite",
                           [("manifest.json", manifest(boxlite_disk, 3, options())),
                            ("disk.qcow2", boxlite_disk)])
    before = sorted(i.id for i in await runtime.list_info())
    bad = bytearray(json.loads(manifest(boxlite_disk, 3, options()))["container_disk_checksum"],
                    "ascii")
    bad[-1] = ord("0") if bad[-1] != ord("0") else ord("1")
    tampered = boxlite_archive(tmp_path / "bad.boxlite", [
        ("manifest.json", manifest(boxlite_disk, 3, options(),
                                   container_disk_checksum=bad.decode())),
        ("disk.qcow2", boxlite_disk)])
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        await runtime.import_box(str(tampered), name="from-boxlite-bad")
    assert sorted(i.id for i in await runtime.list_info()) == before

    box = await runtime.import_box(str(arch), name="from-boxlite-py")
    try:
        assert isinstance(box, boxlite.Box)
        info = await box.info()
        assert (info.name, info.cpus, info.memory_mib) == ("from-boxlite-py", 1, 256)
        assert info.state.status == "stopped" or info.state.status == "configured", info.state
        await box.start()  # its main process (BoxLite's cmd: sleep) keeps it up
        assert await run(box, "cat", "/boxlite-data/hello") == (
            0, "written inside a BoxLite box\n")
        assert await run(box, "sh", "-c", "echo $GREETING; pwd") == (
            0, "hello from boxlite\n/boxlite-data\n")
    finally:
        await runtime.remove(box.id, force=True)
