"""test_bombs.py — hostile images and archives (issue 11, parts 4 and 5): compression bombs,
a sparse 1 TiB file, a million empty entries, oversized base disks, and `.boxlite` archives
edited to lie (checksums, sizes, settings, names, an image on a host nobody configured).
Each is refused with an error naming the limit, and nothing half-made stays in the store."""
import gzip
import hashlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import zlib

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import registry_fixture as rf  # noqa: E402
from boxlite_paths import BOXLITE  # noqa: E402

GiB = 1 << 30


class Home:
    """A CLI on an empty home of its own."""

    def __init__(self, env, path):
        self.env = dict(env)
        self.env["BOXLITE_HOME"] = str(path)
        self.path = pathlib.Path(path)

    def run(self, *args, timeout=300, env=None):
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run([str(BOXLITE), *args], capture_output=True, timeout=timeout,
                              env=e)

    def store(self):
        """Everything the image store holds, by area (the home is made on first use)."""
        out = {}
        for area in ["images/tmp", "images/rootfs", "images/blobs/sha256"]:
            d = self.path / area
            out[area] = sorted(p.name for p in d.iterdir()) if d.exists() else []
        out["records"] = sorted(i["name"] for i in
                                json.loads(self.run("images", "--format", "json").stdout))
        return out


@pytest.fixture
def store_home(box_env, tmp_path):
    h = Home(box_env, tmp_path / "home")
    h.run("images")  # make the tree: the store is compared before and after
    return h


def gzip_repeat(member_plain, times):
    """A gzip file of `times` concatenated members, each member_plain compressed: a stream
    that expands to len(member_plain) * times without compressing that much here."""
    one = gzip.compress(member_plain, compresslevel=9, mtime=0)
    return one * times


def header(name, size=0, kind=tarfile.REGTYPE):
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.type = kind
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return ti.tobuf(format=tarfile.GNU_FORMAT)


def refused(home, path, before, *words, env=None):
    r = home.run("import", str(path), "bomb/test:latest", env=env)
    err = r.stderr.decode()
    assert r.returncode != 0, "the image was accepted"
    for w in words:
        assert w in err, err
    assert home.store() == before, "the store changed"
    return err


def test_gzip_bomb_one_huge_file_refused_at_its_header(store_home, tmp_path):
    home = store_home
    # 64 GiB of zeros claimed by one header; the data is 1 MiB members repeated: decompressing
    # all of it would take minutes, so a refusal within the timeout shows the header decided.
    before = home.store()
    bomb = tmp_path / "bomb.tar.gz"
    with open(bomb, "wb") as f:
        f.write(gzip.compress(header("zeros", 64 * GiB), mtime=0))
        f.write(gzip_repeat(b"\0" * (1 << 20), 2048))
    refused(home, bomb, before, "over the 16 GiB limit per file", "BOXLITE_MAX_IMAGE_FILE")


def test_gzip_bomb_total_bytes_refused(store_home, tmp_path):
    home = store_home
    # Many files, each under the per-file limit, adding up to more than the image limit
    # (lowered here so the test stays small: 40 files of 1 MiB against 16 MiB).
    before = home.store()
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.GNU_FORMAT) as t:
        for i in range(40):
            ti = tarfile.TarInfo(f"f{i}")
            ti.size = 1 << 20
            t.addfile(ti, io.BytesIO(b"\0" * ti.size))
    bomb = tmp_path / "many.tar.gz"
    bomb.write_bytes(gzip.compress(plain.getvalue(), mtime=0))
    refused(home, bomb, before, "expands to more than 16 MiB", "BOXLITE_MAX_IMAGE_BYTES",
            env={"BOXLITE_MAX_IMAGE_BYTES": "16m"})


def test_sparse_terabyte_file_refused(store_home, tmp_path):
    home = store_home
    before = home.store()
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "hole", "wb") as f:
        f.truncate(1 << 40)
    bomb = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-C", str(src), "-cf", str(bomb), "hole"], check=True,
                   timeout=120)
    assert bomb.stat().st_size < 1 << 20
    refused(home, bomb, before, "1099511627776 bytes", "BOXLITE_MAX_IMAGE_FILE")


def test_million_empty_entries_refused(store_home, tmp_path):
    home = store_home
    # 1,000,000 directory headers (512 MB of tar) in a ~1 MB gzip: over the default
    # 500,000 entries.
    before = home.store()
    block = b"".join(header(f"d{i}/", 0, tarfile.DIRTYPE) for i in range(1000))
    bomb = tmp_path / "entries.tar.gz"
    bomb.write_bytes(gzip_repeat(block, 1000))
    refused(home, bomb, before, "more than 500000 entries", "BOXLITE_MAX_IMAGE_ENTRIES")


def zstd_repeat(member_plain, times):
    """Concatenated zstd frames, like gzip_repeat."""
    one = subprocess.run(["zstd", "-q", "-c", "-19"], input=member_plain, capture_output=True,
                         check=True, timeout=60).stdout
    return one * times


def bomb_layout(path, layer, media_type):
    """An OCI layout of one (hostile) layer blob as given, with a config naming it."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    ld = put(layer)
    cfg = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": [ld["digest"]]}}).encode())
    man = put(json.dumps({"schemaVersion": 2,
                          "mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                     **cfg},
                          "layers": [{"mediaType": media_type, **ld}]}).encode())
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **man}]}))
    return path


def test_zstd_bomb_pulled_from_a_registry_leaves_nothing(store_home, tmp_path):
    """A zstd layer of 64 GiB zeros (3 MB of repeated frames) behind a real registry: the
    pull downloads it, the scan refuses it at its header, and the blobs go again."""
    home = store_home
    before = home.store()
    layer = header("zeros", 64 * GiB) + b"\0" * 512
    layer = subprocess.run(["zstd", "-q", "-c"], input=layer, capture_output=True, check=True,
                           timeout=60).stdout + zstd_repeat(b"\0" * (1 << 20), 2048)
    layout = bomb_layout(tmp_path / "layout", layer,
                         "application/vnd.oci.image.layer.v1.tar+zstd")
    reg = rf.Registry(tmp_path / "registry")
    try:
        reg.push(layout, "bomb/zstd:latest", "oci")
        r = home.run("--registry", f"{reg.host},http", "pull", f"{reg.host}/bomb/zstd:latest")
    finally:
        reg.stop()
    err = r.stderr.decode()
    assert r.returncode != 0, "the bomb was accepted"
    assert "over the 16 GiB limit per file (BOXLITE_MAX_IMAGE_FILE)" in err, err
    assert home.store() == before, "the refused image left something in the store"


def test_base_disk_limit_and_a_real_image_within_the_limits(store_home, tmp_path):
    home = store_home
    before = home.store()
    src = tmp_path / "root"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "data").write_bytes(os.urandom(1 << 20))
    tarball = tmp_path / "root.tar"
    subprocess.run(["tar", "-C", str(src), "-cf", str(tarball), "."], check=True, timeout=60)
    # the smallest base disk is 2 GiB: a 1 GiB limit refuses any image
    refused(home, tarball, before, "base disk, over the 1 GiB limit", "BOXLITE_MAX_IMAGE_DISK",
            env={"BOXLITE_MAX_IMAGE_DISK": "1g"})
    r = home.run("import", str(tarball), "fine/test:latest")
    assert r.returncode == 0, r.stderr.decode()
    after = home.store()
    assert after["images/tmp"] == [] and len(after["images/rootfs"]) == 1


# ---- hostile .boxlite archives ------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(box_env, tmp_path_factory):
    """A real archive: a box of the built-in image, created and exported."""
    d = tmp_path_factory.mktemp("archive")
    h = Home(box_env, d / "home")
    name = f"arch-{os.getpid()}"
    r = h.run("create", "--name", name)
    assert r.returncode == 0, r.stderr.decode()
    out = d / "real.boxlite"
    r = h.run("export", name, str(out), timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    h.run("rm", "-f", name)
    with tarfile.open(out) as t:
        manifest = json.loads(t.extractfile("manifest.json").read())
        disk = t.extractfile("disk.qcow2").read()
    return manifest, disk


def write_archive(path, manifest, disk):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for name, data in [("manifest.json", json.dumps(manifest).encode()), ("disk.qcow2", disk)]:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o600
            t.addfile(ti, io.BytesIO(data))
    return path


def boxes_state(h):
    d = h.path / "boxes"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def import_refused(h, path, *words, args=(), env=None):
    before = boxes_state(h), h.store()
    r = h.run("import-box", *args, str(path), env=env)
    err = r.stderr.decode()
    assert r.returncode != 0, "the archive was accepted"
    for w in words:
        assert w in err, err
    assert (boxes_state(h), h.store()) == before, "the archive left something behind"
    return err


def edited(manifest, **box):
    m = json.loads(json.dumps(manifest))
    m["box"].update(box)
    return m


def test_real_archive_imports(store_home, tmp_path, exported):
    manifest, disk = exported
    path = write_archive(tmp_path / "ok.boxlite", manifest, disk)
    r = store_home.run("import-box", "--name", "good", str(path))
    assert r.returncode == 0, r.stderr.decode()
    store_home.run("rm", "-f", "good")


def test_archive_with_a_wrong_checksum_or_size_refused(store_home, tmp_path, exported):
    manifest, disk = exported
    bad = bytearray(disk)
    bad[len(bad) // 2] ^= 0xff
    import_refused(store_home, write_archive(tmp_path / "sum.boxlite", manifest, bytes(bad)),
                   "checksum mismatch")
    m = json.loads(json.dumps(manifest))
    m["files"][0]["size"] = len(disk) - 4096
    import_refused(store_home, write_archive(tmp_path / "size.boxlite", m, disk),
                   f"is {len(disk)} bytes, the manifest says {len(disk) - 4096}")


@pytest.mark.parametrize("box,words", [
    ({"cpus": 64}, "64 cpus, over the limit of"),
    ({"memory_mib": 1024 * 1024}, "1048576 MiB of memory, over the limit of"),
    ({"disk_size_gb": 16000}, "a 16000 GB disk, over the limit of 256"),
    ({"image": "evil.example:5000/steal/me:latest"},
     "is on evil.example:5000, a registry you have not configured"),
])
def test_archive_asking_too_much_refused(store_home, tmp_path, exported, box, words):
    manifest, disk = exported
    path = write_archive(tmp_path / "big.boxlite", edited(manifest, **box), disk)
    import_refused(store_home, path, words, "(BOXLITE_MAX_IMPORT" if "image" not in box else "")
    if box.get("cpus"):  # the user vouches for it: the old bounds apply
        r = store_home.run("import-box", "--trusted", "--name", "vouched", str(path))
        assert r.returncode == 0, r.stderr.decode()
        store_home.run("rm", "-f", "vouched")


def test_archive_disk_over_the_limit_refused(store_home, tmp_path, exported):
    # the disk grown to a virtual 1 TiB (a few KB more on file); the manifest's checksum and
    # size are made to match, so only the limit stands in the way
    manifest, disk = exported
    q = tmp_path / "big.qcow2"
    q.write_bytes(disk)
    subprocess.run(["qemu-img", "resize", "-f", "qcow2", str(q), "1T"], check=True,
                   capture_output=True, timeout=60)
    big = q.read_bytes()
    m = json.loads(json.dumps(manifest))
    m["files"][0]["size"] = len(big)
    m["files"][0]["sha256"] = hashlib.sha256(bytes(big)).hexdigest()
    path = write_archive(tmp_path / "disk.boxlite", m, bytes(big))
    import_refused(store_home, path, "virtual size of 1099511627776 bytes, over the 256 GiB "
                   "limit for an untrusted archive (BOXLITE_MAX_IMPORT_DISK)")
    # the file itself over a lowered limit: refused before a byte of the disk is written
    import_refused(store_home, write_archive(tmp_path / "d2.boxlite", manifest, disk),
                   "over the 0 GiB limit for an untrusted archive",
                   env={"BOXLITE_MAX_IMPORT_DISK": "0"})


@pytest.mark.parametrize("name", ["bad name", "x" * 65, "-rf", "a;reboot", "quiet\ninit=/bin/sh"])
def test_archive_box_name_validated(store_home, tmp_path, exported, name):
    manifest, disk = exported
    path = write_archive(tmp_path / "n.boxlite", manifest, disk)
    import_refused(store_home, path, "invalid box name", args=("--name", name))
