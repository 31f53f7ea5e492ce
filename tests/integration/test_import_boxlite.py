"""test_import_boxlite.py — `boxlite import-box` of an archive exported by BoxLite (the Rust
project): built here as BoxLite writes one (docs/snapshots.md "BoxLite's archives": a zstd tar,
GNU sparse members, manifest.json with version/image/box_options/container_disk_checksum, then
disk.qcow2 — a standalone qcow2 holding the box's ext4 rootfs), imported, booted, read back;
and hostile variants, each refused with its reason and nothing left in the store."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from boxlite_archive import boxlite_archive, container_disk, manifest, options  # noqa: E402


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def out(r):
    return ok(r).stdout.decode().strip()


@pytest.fixture(scope="module")
def boxlite_disk(tmp_path_factory, cli, home):
    """BoxLite's container disk (boxlite_archive.container_disk) of the default image."""
    name = "bxl-prep"
    ok(cli.run("create", "--name", name))  # prepares the default image's ext4 base
    cli.run("rm", "-f", name)
    bases = sorted((home / "images" / "rootfs").glob("*.ext4"))
    assert bases, "no image base in the store"
    return container_disk(bases[0], tmp_path_factory.mktemp("bxl"))


def listing(cli, home):
    return (json.loads(out(cli.run("ls", "-a", "--format", "json"))),
            sorted(os.listdir(home / "boxes")))


def test_boxlite_archive_imports_boots_and_keeps_its_files(cli, boxlite_disk, tmp_path):
    arch = boxlite_archive(tmp_path / "box.boxlite",
                           [("manifest.json", manifest(boxlite_disk, 3, options())),
                            ("disk.qcow2", boxlite_disk)])
    assert arch.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"  # zstd, as BoxLite writes it
    name = "imported-from-boxlite"
    new = out(cli.run("import-box", "--name", name, str(arch)))
    try:
        assert len(new) == 12
        info = json.loads(out(cli.run("inspect", name)))[0]
        assert (info["cpus"], info["memory_mib"]) == (1, 256)
        ok(cli.run("start", name))  # its main process (entrypoint + cmd) keeps it running
        assert out(cli.run("exec", name, "--", "cat", "/boxlite-data/hello")) == (
            "written inside a BoxLite box")
        assert out(cli.run("exec", name, "--", "sh", "-c", "echo $GREETING; pwd")).split(
            "\n") == ["hello from boxlite", "/boxlite-data"]
    finally:
        cli.run("rm", "-f", name)


def test_boxlite_v2_archive_with_old_guest_rootfs_member(cli, boxlite_disk, tmp_path):
    """Version 2 (no box_options: the image and BoxLite's defaults), a plain tar, and the
    guest-rootfs.qcow2 member archives from before BoxLite's shared guest image carried."""
    arch = boxlite_archive(tmp_path / "v2.boxlite",
                           [("manifest.json", manifest(boxlite_disk, 2)),
                            ("guest-rootfs.qcow2", b"QFI\xfb" + bytes(4092)),
                            ("disk.qcow2", boxlite_disk)], zstd=False)
    name = "boxlite-v2"
    ok(cli.run("import-box", "--name", name, str(arch)))
    try:
        info = json.loads(out(cli.run("inspect", name)))[0]
        assert (info["cpus"], info["memory_mib"], info["image"]) == (1, 512, "default")
    finally:
        cli.run("rm", "-f", name)


def hostile_cases(disk, tmp_path):
    good = manifest(disk, 3, options())
    flipped = bytearray(disk.read_bytes())
    flipped[len(flipped) // 2] ^= 1
    evil = tmp_path / "evil.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw",
                    str(evil), "1M"], check=True)
    bomb = tmp_path / "bomb"
    with open(bomb, "wb") as f:  # 2 TiB of holes: a few KiB once tarred sparse and zstd'd
        f.truncate(2 << 40)
    m = json.loads(good)
    return {
        "escaping-name": ([("manifest.json", good), ("../disk.qcow2", disk)],
                          b"unexpected member"),
        "extra-member": ([("manifest.json", good), ("disk.qcow2", disk), ("x", b"1")],
                         b"unexpected member"),
        "wrong-checksum": ([("manifest.json", good), ("disk.qcow2", bytes(flipped))],
                           b"checksum mismatch"),
        "no-checksum-v1": ([("manifest.json", manifest(disk, 1, container_disk_checksum="")),
                            ("disk.qcow2", disk)], b"no checksum"),
        "sparse-bomb": ([("manifest.json", json.dumps(
            dict(m, container_disk_checksum="sha256:" + "0" * 64)).encode()),
            ("disk.qcow2", bomb)], b"over the"),
        "future-version": ([("manifest.json", manifest(disk, 6, options())),
                            ("disk.qcow2", disk)], b"version"),
        "not-json": ([("manifest.json", b"{\"version\": 3, \"container_disk_checksum\""),
                      ("disk.qcow2", disk)], b"not a boxlite box manifest"),
        "absurd-cpus": ([("manifest.json", manifest(disk, 3, options(cpus=250))),
                         ("disk.qcow2", disk)], b"250 cpus (1 to 64)"),
        "cpus-over-host": ([("manifest.json", manifest(disk, 3, options(cpus=64))),
                            ("disk.qcow2", disk)], b"64 cpus, over the limit"),
        "absurd-memory": ([("manifest.json", manifest(disk, 3, options(memory_mib=1 << 31))),
                           ("disk.qcow2", disk)], b"2147483648 MiB of memory"),
        "memory-not-a-number": ([("manifest.json", manifest(disk, 3, options(memory_mib="8G"))),
                                 ("disk.qcow2", disk)], b"must be integers"),
        "host-rootfs": ([("manifest.json", manifest(disk, 3, options(
            rootfs={"RootfsPath": "/"}))), ("disk.qcow2", disk)], b"host path"),
        "host-volume": ([("manifest.json", manifest(disk, 3, options(volumes=[
            {"host_path": "/", "guest_path": "/host", "read_only": False}]))),
            ("disk.qcow2", disk)], b"volumes"),
        "allowlist": ([("manifest.json", manifest(disk, 3, options(
            network={"Enabled": {"allow_net": ["example.com"]}}))), ("disk.qcow2", disk)],
            b"allow_net"),
        "bad-env": ([("manifest.json", manifest(disk, 3, options(env=[["=X", "1"]]))),
                     ("disk.qcow2", disk)], b"env"),
        "backing-file": ([("manifest.json", manifest(evil, 3, options())),
                          ("disk.qcow2", evil)], b"backing file"),
    }


def test_hostile_boxlite_archives_are_refused_and_leave_nothing(cli, home, boxlite_disk,
                                                                tmp_path):
    before = listing(cli, home)
    for i, (case, (members, why)) in enumerate(hostile_cases(boxlite_disk, tmp_path).items()):
        p = tmp_path / f"c{i}.boxlite"  # the path is in the message: it must not say why
        if case == "escaping-name":  # GNU tar will not write "../": write it with tarfile
            import tarfile
            with tarfile.open(p, "w") as t:
                for n, data in members:
                    if isinstance(data, bytes):
                        ti = tarfile.TarInfo(n)
                        ti.size = len(data)
                        t.addfile(ti, __import__("io").BytesIO(data))
                    else:
                        t.add(str(data), arcname=n)
        else:
            boxlite_archive(p, members)
        if case == "cpus-over-host" and (os.cpu_count() or 1) >= 64:
            continue
        r = cli.run("import-box", "--name", f"bad{i}", str(p))
        assert r.returncode != 0 and why in r.stderr, (case, r.stderr[-600:])
        assert listing(cli, home) == before, case


def test_symlinked_disk_member_refused(cli, home, boxlite_disk, tmp_path):
    import io
    import tarfile
    before = listing(cli, home)
    p = tmp_path / "link.boxlite"
    with tarfile.open(p, "w", format=tarfile.GNU_FORMAT) as t:
        m = manifest(boxlite_disk, 3, options())
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(m)
        t.addfile(ti, io.BytesIO(m))
        ti = tarfile.TarInfo("disk.qcow2")
        ti.type = tarfile.SYMTYPE
        ti.linkname = "/etc/shadow"
        t.addfile(ti)
    r = cli.run("import-box", "--name", "bad-link", str(p))
    assert r.returncode != 0 and b"not a regular file" in r.stderr, r.stderr
    assert listing(cli, home) == before


def test_our_own_archives_stay_plain_tar(cli, home, tmp_path):
    """Reading zstd is for BoxLite's archives: one of ours compressed is refused."""
    name = "bxl-ours"
    ok(cli.run("create", "--name", name))
    try:
        arch = tmp_path / "ours.boxlite"
        ok(cli.run("export", name, str(arch)))
        z = tmp_path / "c0.boxlite"
        subprocess.run(["zstd", "-q", "-f", str(arch), "-o", str(z)], check=True)
        before = listing(cli, home)
        r = cli.run("import-box", "--name", "bxl-ours-z", str(z))
        assert r.returncode != 0 and b"is a plain tar" in r.stderr, r.stderr
        assert listing(cli, home) == before
        ok(cli.run("import-box", "--name", "bxl-ours-2", str(arch)))
        cli.run("rm", "-f", "bxl-ours-2")
    finally:
        cli.run("rm", "-f", name)
