"""test_bombs.py — hostile images and archives (issue 11, parts 4 and 5): compression bombs,
a sparse 1 TiB file, a million empty entries, oversized base disks, and `.boxlite` archives
edited to lie (checksums, sizes, settings, names, an image on a host nobody configured).
Each is refused with an error naming the limit, and nothing half-made stays in the store."""
import gzip
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
        for area in ["images/tmp", "images/rootfs", "images/blobs/sha256", "images/refs"]:
            d = self.path / area
            out[area] = sorted(p.name for p in d.iterdir()) if d.exists() else []
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
    print(err)
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
