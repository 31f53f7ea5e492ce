"""boxlite_archive.py — archives as BoxLite (the Rust project) exports them, built for tests
(docs/snapshots.md "BoxLite's archives"): a zstd tar with GNU sparse members, manifest.json
(version, image, box_options, container_disk_checksum), then disk.qcow2 — a standalone qcow2
holding the box's ext4 rootfs. Shared by the CLI's and the Python module's import tests."""
import hashlib
import json
import shutil
import subprocess


def sha256_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def options(**over):
    """BoxOptions as BoxLite's serde writes them (the fields it always writes)."""
    o = {"cpus": 1, "memory_mib": 256, "disk_size_gb": None, "working_dir": "/boxlite-data",
         "env": [["GREETING", "hello from boxlite"]], "rootfs": {"Image": "default"},
         "volumes": [], "network": {"Enabled": {"allow_net": []}},
         "inbound_network": {"Enabled": {"allow_net": []}}, "ports": [],
         "auto_remove": False, "auto_stop": None, "auto_delete": None, "auto_resume": None,
         "detach": False, "advanced": {}, "entrypoint": ["/bin/sh"],
         "cmd": ["-c", "sleep 100000"], "user": None, "tty": False, "secrets": []}
    o.update(over)
    return o


def manifest(disk, version=3, box_options=None, **over):
    m = {"version": version, "box_name": "from-boxlite", "image": "default",
         "guest_disk_checksum": "", "container_disk_checksum": sha256_file(disk),
         "exported_at": "2026-11-30T04:00:00.000000+00:00"}
    if box_options is not None:
        m["box_options"] = box_options
    m.update(over)
    return json.dumps(m, indent=2).encode()


def boxlite_archive(dest, members, zstd=True):
    """members: [(name, path or bytes)] in order; GNU tar with sparse members (what BoxLite's
    tar::Builder writes for a qcow2 with holes), zstd-compressed as BoxLite exports are."""
    work = dest.parent / (dest.name + ".d")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    names = []
    for name, data in members:
        p = work / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:  # holes kept (the sparse bomb is 2 TiB of them)
            subprocess.run(["cp", "--sparse=always", str(data), str(p)], check=True)
        names.append(name)
    tar = dest.parent / (dest.name + ".tar")
    subprocess.run(["tar", "--format=gnu", "--sparse", "-cf", str(tar), "-C", str(work),
                    *names], check=True)
    if zstd:
        subprocess.run(["zstd", "-q", "-f", "-3", str(tar), "-o", str(dest)], check=True)
        tar.unlink()
    else:
        tar.rename(dest)
    shutil.rmtree(work)
    return dest


def container_disk(base_ext4, d):
    """BoxLite's container disk in directory d: the image's ext4 rootfs base_ext4 (as BoxLite
    builds one from the layers) with the box's own file /boxlite-data/hello written in,
    flattened into a standalone qcow2."""
    ext4 = d / "rootfs.ext4"
    shutil.copyfile(base_ext4, ext4)
    (d / "hello").write_text("written inside a BoxLite box\n")
    subprocess.run(["debugfs", "-w", "-R", "mkdir /boxlite-data", str(ext4)], check=True,
                   capture_output=True)
    subprocess.run(["debugfs", "-w", "-R", f"write {d / 'hello'} /boxlite-data/hello",
                    str(ext4)], check=True, capture_output=True)
    qcow = d / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(ext4),
                    str(qcow)], check=True)
    return qcow
