#!/usr/bin/env python3
"""make_seeds.py — writes the seed corpora of the issue-11 fuzz targets: fuzz_agent_untar
(corpus_agent_untar), fuzz_import (corpus_import), fuzz_boxarchive (corpus_boxarchive),
fuzz_registries (corpus_registries), fuzz_qmp (corpus_qmp) and fuzz_serve_decode
(corpus_serve_decode). Each gets valid inputs and a
few known-nasty ones. Deterministic; run from anywhere; the seeds are committed, this says
how they were made."""
import gzip
import hashlib
import io
import json
import pathlib
import tarfile

HERE = pathlib.Path(__file__).resolve().parent


def write(corpus, name, data):
    d = HERE / corpus
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def tar(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (name, kind, arg[, mode]); kind f (file: bytes), d, l (symlink), h (hard)."""
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for name, kind, arg, *mode in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1500000000
            ti.mode = mode[0] if mode else (0o755 if kind == "d" else 0o644)
            if kind == "d":
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            elif kind in "lh":
                ti.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
                ti.linkname = arg
                t.addfile(ti)
            else:
                ti.size = len(arg)
                t.addfile(ti, io.BytesIO(arg))
    return b.getvalue()


def raw_header(name, size, typeflag=b"0", size_field=None, bad_sum=False):
    """One ustar header by hand (for fields tarfile will not write)."""
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field if size_field is not None else b"%011o\0" % size
    h[136:148] = b"%011o\0" % 1500000000
    h[156:157] = typeflag
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b" " * 8
    s = sum(h) + (1 if bad_sum else 0)
    h[148:156] = b"%06o\0 " % s
    return bytes(h)


def agent_untar():
    c = "corpus_agent_untar"
    tree = tar([("top", "d", None), ("top/a.txt", "f", b"hello\n"),
                ("top/sub", "d", None, 0o750), ("top/sub/b", "f", b"b" * 700, 0o600),
                ("top/link", "l", "a.txt"), ("top/hard", "h", "top/a.txt"),
                ("top/" + "n" * 120 + "/" + "m" * 110, "f", b"long pax name")])
    write(c, "tree-into-dir", b"\x00" + tree)
    write(c, "tree-new-name", b"\x08" + tree)
    write(c, "tree-overwrite-parent", b"\x03" + tree)
    write(c, "raw-many-tops", b"\x04" + tar([("a", "f", b"1"), ("b", "d", None),
                                            ("b/c", "f", b"2"), ("./d", "f", b"3")]))
    write(c, "gnu-longname", b"\x00" + tar([("top", "d", None),
                                            ("top/" + "g" * 150, "f", b"gnu")],
                                           fmt=tarfile.GNU_FORMAT))
    write(c, "one-file", b"\x08" + tar([("file.bin", "f", bytes(range(256)) * 3)]))
    # known-nasty: escapes, writes through a link the archive made, lies about sizes
    write(c, "nasty-dotdot", b"\x04" + tar([("../escape", "f", b"x"), ("a/../../b", "f", b"y")]))
    write(c, "nasty-absolute", b"\x04" + tar([("/etc/evil", "f", b"x")]))
    write(c, "nasty-link-then-write", b"\x05" + tar([("top", "d", None),
                                                     ("top/l", "l", "/"),
                                                     ("top/l/sentinel/keep", "f", b"owned"),
                                                     ("top/up", "l", "../.."),
                                                     ("top/up/x", "f", b"up")]))
    write(c, "nasty-beside", b"\x00" + tar([("top", "d", None), ("other/x", "f", b"x")]))
    write(c, "nasty-hardlink-out", b"\x00" + tar([("top", "d", None),
                                                  ("top/h", "h", "../sentinel/keep")]))
    body = raw_header("huge", 0, size_field=b"\x80" + b"\xff" * 11) + b"\0" * 1024
    write(c, "nasty-base256-size", b"\x00" + body)
    write(c, "nasty-bad-checksum", b"\x00" + raw_header("x", 1, bad_sum=True) + b"x" * 512)
    write(c, "nasty-short", b"\x00" + raw_header("x", 100000) + b"x" * 700)
    pax = b"99999999 path=x\n"
    write(c, "nasty-pax-lies", b"\x00" + raw_header("p", len(pax), b"x") + pax.ljust(512, b"\0")
          + raw_header("y", 0) + b"\0" * 1024)
    write(c, "nasty-pax-huge", b"\x00" + raw_header("p", 1 << 30, b"x") + b"\0" * 1024)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def image_parts():
    layer = tar([("bin", "d", None), ("bin/sh", "f", b"#!fake\n", 0o755),
                 ("etc", "d", None), ("etc/os-release", "f", b"ID=fuzz\n")])
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    return layer, config


def import_seeds():
    c = "corpus_import"
    layer, config = image_parts()
    save = [("manifest.json", "f", json.dumps([{"Config": "cfg.json",
                                                "RepoTags": ["localhost/fuzz:1"],
                                                "Layers": ["l1/layer.tar"]}]).encode()),
            ("cfg.json", "f", config), ("l1", "d", None), ("l1/layer.tar", "f", layer)]
    write(c, "docker-save.tar", tar(save))
    write(c, "docker-save.tar.gz", gzip.compress(tar(save), mtime=0))
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": sha(layer), "size": len(layer)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "v1"},
         "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    blobs = [("blobs", "d", None), ("blobs/sha256", "d", None)] + [
        ("blobs/sha256/" + sha(b)[7:], "f", b) for b in (layer, config, manifest)]
    oci = [("oci-layout", "f", b'{"imageLayoutVersion":"1.0.0"}'),
           ("index.json", "f", index)] + blobs
    write(c, "oci-layout.tar", tar(oci))
    inner = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": json.loads(index)["manifests"]}).encode()
    outer = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(inner),
         "size": len(inner)}]}).encode()
    write(c, "oci-nested-index.tar", tar([("oci-layout", "f", b"{}"), ("index.json", "f", outer),
                                          ("blobs/sha256/" + sha(inner)[7:], "f", inner)]
                                         + blobs[2:]))
    write(c, "rootfs.tar", layer)
    # known-nasty
    write(c, "nasty-two-manifests.tar", tar(save + [("manifest.json", "f", b"[]")]))
    write(c, "nasty-layer-missing.tar", tar([save[0], save[1]]))
    write(c, "nasty-config-is-dir.tar", tar([("manifest.json", "f", json.dumps(
        [{"Config": "l1", "Layers": ["l1", "../../etc/passwd", None]}]).encode())] + save[2:]))
    write(c, "nasty-wrong-digest-name.tar", tar([("oci-layout", "f", b"{}"),
                                                ("index.json", "f", index),
                                                ("blobs/sha256/" + "0" * 64, "f", layer),
                                                ("blobs/sha256/../../../../tmp/x" + "a" * 47,
                                                 "f", config)]))
    write(c, "nasty-index-shapes.tar", tar([("index.json", "f", b'{"manifests":{"0":1}}'),
                                           ("index.json", "f", b'{"manifests":[{"digest":7}]}')]))
    write(c, "nasty-huge-size.tar", raw_header("manifest.json", 0, size_field=b"77777777777\0")
          + b"\0" * 1024)


def boxarchive_seeds():
    c = "corpus_boxarchive"
    disk = b"QFI\xfb" + bytes(508)

    def manifest(d=disk, **over):
        m = {"format": "boxlite-box", "version": 1,
             "box": {"image": "default", "cpus": 1, "memory_mib": 512, "disk_size_gb": 2,
                     "env": ["A=1"], "entrypoint": None, "cmd": ["sh"], "workdir": "/",
                     "user": "root", "network_disabled": False},
             "files": [{"name": "disk.qcow2", "size": len(d), "sha256": sha(d)[7:]}]}
        m.update(over)
        return json.dumps(m, indent=2, sort_keys=True).encode()
    write(c, "valid.boxlite", tar([("manifest.json", "f", manifest()),
                                   ("disk.qcow2", "f", disk, 0o600)]))
    big = bytes(range(256)) * 40
    write(c, "valid-10k.boxlite", tar([("manifest.json", "f", manifest(big)),
                                       ("disk.qcow2", "f", big)]))
    # known-nasty
    write(c, "nasty-order.boxlite", tar([("disk.qcow2", "f", disk),
                                         ("manifest.json", "f", manifest())]))
    write(c, "nasty-extra.boxlite", tar([("manifest.json", "f", manifest()),
                                         ("disk.qcow2", "f", disk), ("more", "f", b"x")]))
    write(c, "nasty-size-lie.boxlite", tar([("manifest.json", "f", manifest(disk[:100])),
                                            ("disk.qcow2", "f", disk)]))
    bad = json.loads(manifest())
    bad["files"][0]["sha256"] = "0" * 64
    write(c, "nasty-checksum.boxlite", tar([("manifest.json", "f", json.dumps(bad).encode()),
                                            ("disk.qcow2", "f", disk)]))
    write(c, "nasty-symlink-disk.boxlite", tar([("manifest.json", "f", manifest()),
                                                ("disk.qcow2", "l", "/etc/shadow")]))
    write(c, "nasty-dup-keys.boxlite", tar([("manifest.json", "f", b'{"format":"boxlite-box",'
                                             b'"format":"x","files":[],"box":{}}'),
                                            ("disk.qcow2", "f", disk)]))
    write(c, "nasty-limits.boxlite", tar([("manifest.json", "f", manifest(box={
        "image": "evil.example:5000/x", "cpus": 1 << 40, "memory_mib": -1,
        "disk_size_gb": 1 << 62, "env": ["=x", 7], "workdir": "relative"})),
        ("disk.qcow2", "f", disk)]))
    write(c, "nasty-huge-manifest.boxlite",
          raw_header("manifest.json", 0, size_field=b"77777777777\0") + b"\0" * 1024)


def boxlite_rust_seeds():
    """Archives as BoxLite (the Rust project) exports them (docs/snapshots.md "BoxLite's
    archives"): GNU tar, manifest.json with version/image/box_options/container_disk_checksum,
    then disk.qcow2; zstd-compressed when the zstd tool is there (skipped otherwise)."""
    import shutil
    import subprocess
    c = "corpus_boxarchive"
    disk = b"QFI\xfb" + bytes(508)

    def manifest(d=disk, version=3, **opts):
        o = {"cpus": 1, "memory_mib": 256, "disk_size_gb": None, "working_dir": "/w",
             "env": [["A", "1"]], "rootfs": {"Image": "default"}, "volumes": [],
             "network": {"Enabled": {"allow_net": []}}, "ports": [], "auto_remove": False,
             "detach": False, "advanced": {}, "entrypoint": ["/bin/sh"], "cmd": ["-c", "x"],
             "user": None, "tty": False, "secrets": []}
        o.update(opts)
        m = {"version": version, "box_name": "b", "image": "default", "box_options": o,
             "guest_disk_checksum": "", "container_disk_checksum": sha(d),
             "exported_at": "2026-11-30T00:00:00+00:00"}
        if version < 3:
            del m["box_options"]
        return json.dumps(m, indent=2).encode()

    gnu = tarfile.GNU_FORMAT
    plain = tar([("manifest.json", "f", manifest()), ("disk.qcow2", "f", disk)], gnu)
    write(c, "boxlite-rust-v3.tar", plain)
    write(c, "boxlite-rust-v2-guest.tar", tar([("manifest.json", "f", manifest(version=2)),
                                               ("guest-rootfs.qcow2", "f", disk),
                                               ("disk.qcow2", "f", disk)], gnu))
    if shutil.which("zstd"):
        z = subprocess.run(["zstd", "-q", "-c", "-3"], input=plain, capture_output=True,
                           check=True).stdout
        write(c, "boxlite-rust-v3.tar.zst", z)
    write(c, "nasty-boxlite-rust-v1.tar", tar([("manifest.json", "f", manifest(
        version=1, container_disk_checksum="")), ("disk.qcow2", "f", disk)], gnu))
    write(c, "nasty-boxlite-rust-opts.tar", tar([("manifest.json", "f", manifest(
        cpus=1 << 40, memory_mib="8G", env=[["=", 1]], rootfs={"RootfsPath": "/"},
        volumes=[{"host_path": "/", "guest_path": "/h"}],
        network={"Enabled": {"allow_net": ["x"]}})), ("disk.qcow2", "f", disk)], gnu))
    write(c, "nasty-boxlite-rust-two-guests.tar", tar(
        [("manifest.json", "f", manifest(version=2)), ("guest-rootfs.qcow2", "f", disk),
         ("guest-rootfs.qcow2", "f", disk), ("disk.qcow2", "f", disk)], gnu))
    write(c, "nasty-boxlite-rust-huge-disk.tar", tar([("manifest.json", "f", manifest())], gnu)[
        :-1024] + raw_header("disk.qcow2", 0, size_field=b"77777777777\0") + b"\0" * 1024)


def registries_seeds():
    c = "corpus_registries"
    write(c, "valid.json", json.dumps({"registries": [
        {"host": "127.0.0.1:5000", "transport": "http", "search": True},
        {"host": "registry.example", "username": "u", "password": "p", "ca_file": "/ca.pem",
         "skip_verify": False},
        {"host": "tok.example", "token": "t0k"}]}, indent=2))
    write(c, "empty.json", '{"registries": []}')
    write(c, "nasty-dup-hosts.json", json.dumps({"registries": [
        {"host": "a", "transport": "http"}, {"host": "a", "transport": "https"}]}))
    write(c, "nasty-bad-transport.json", '{"registries":[{"host":"a","transport":"gopher"}]}')
    write(c, "nasty-no-host.json", '{"registries":[{"transport":"http"},{"host":""},7,null]}')
    write(c, "nasty-shapes.json", '{"registries":{"host":"a"}}')
    write(c, "nasty-deep.json", "[" * 5000)
    write(c, "nasty-types.json", '{"registries":[{"host":["a"],"search":"yes","token":1e999}]}')
    write(c, "nasty-truncated.json", '{"registries":[{"host":"a\\u00')


def qmp_seeds():
    c = "corpus_qmp"
    greet = b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 8}}, ' \
            b'"capabilities": ["oob"]}}\r\n'
    ret = b'{"return": {}}\r\n'
    event = b'{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}\r\n'
    status = b'{"return": {"status": "running", "running": true}}\r\n'
    err = b'{"error": {"class": "GenericError", "desc": "no"}}\r\n'
    write(c, "session-lines", b"\x00" + greet + ret + event + status + err)
    write(c, "session-cmd", b"\x01" + greet + ret + event + status + err + ret)
    write(c, "migrate", b"\x01" + greet + ret + b'{"return": {"status": "completed"}}\n')
    # known-nasty: a line longer than the buffer (dropped whole, its tail is no reply), long
    # lines cut to the line buffer, NULs, no newline at all
    write(c, "nasty-overlong", b"\x00" + greet + b"x" * 70000 + b'{"return": {}}\n' + ret)
    write(c, "nasty-overlong-cmd", b"\x01" + greet + ret + b"y" * 65536 + ret + status)
    write(c, "nasty-long", b"\x00" + b'{"return": "' + b"z" * 5000 + b'"}\n' + ret)
    write(c, "nasty-nul", b"\x01" + greet.replace(b"QMP", b"Q\0MP") + b"\0\n" + ret)
    write(c, "nasty-no-newline", b"\x00" + greet.rstrip())


def serve_decode_seeds():
    """fuzz_serve_decode: byte 0 picks the decoder (0/1 CreateBoxRequest without/with the
    volume root /usr/share, 2 exec, 3 signal, 4 resize, 5 snapshot, 6 stop, 7 clone, 8 an
    attach control frame, 9 pageSize\\npageToken, 10 ?force=, 11 ?port=); byte 1 is the list
    length for 9, anything for the others. Requests from the spec's examples and our tests."""
    c = "corpus_serve_decode"
    j = lambda o: json.dumps(o).encode()
    box = [
        {"name": "serve-prism", "memory_mib": 256},
        {"name": "b", "image": "busybox:latest", "cpus": 2, "memory_mib": 512, "disk_size_gb": 4,
         "working_dir": "/", "env": {"A": "1", "B": ""}, "entrypoint": ["/bin/sh", "-c"],
         "cmd": ["sleep 1"], "user": "root", "detach": True, "auto_delete": 60,
         "security": "standard", "auto_pause": 0, "auto_resume": False},
        {"secrets": [{"name": "API_KEY", "value": "s3cret", "hosts": ["api.example.com"],
                      "placeholder": "<K>"}, {"name": "B", "value": "v", "hosts": None}]},
        {"network": {"mode": "enabled", "allow_net": ["example.com", "*.example.com:443",
                                                      "203.0.113.0/24"]}},
        {"network": {"mode": "disabled"}},
        {"rootfs_path": "/"}, {"advanced": {}}, {"security": "maximum"}, {"bogus": 1},
        {"auto_delete": -1}, {"cpus": 33}, {"env": {"=x": "1"}}, {"cmd": [1]},
        {"secrets": [{"name": "X"}]}, {"network": {"mode": "on"}}, {"volumes": "x"},
    ]
    for i, b in enumerate(box):
        write(c, f"box{i}", b"\x00" + j(b))
    vols = [{"volumes": [{"host_path": "/usr/share/doc", "guest_path": "/mnt", "read_only": True}]},
            {"volumes": [{"host_path": "/usr/share/../../etc", "guest_path": "/mnt"}]},
            {"volumes": [{"host_path": "/etc", "guest_path": "/etc"}]}, {"volumes": []}]
    for i, b in enumerate(vols):
        write(c, f"vol{i}", b"\x01" + j(b))
    execs = [{"command": "echo", "args": ["hi"], "env": {"A": "b"}, "working_dir": "/tmp",
              "tty": True, "timeout_seconds": 2.5},
             {"command": "sh", "args": None, "timeout_seconds": 86400}, {"command": ""},
             {"command": "x", "args": "y"}, {"command": "x", "timeout_seconds": 0.01}]
    for i, b in enumerate(execs):
        write(c, f"exec{i}", b"\x02" + j(b))
    for i, b in enumerate([{"signal": 15}, {"signal": 9}, {"signal": 4294967311}, {}]):
        write(c, f"signal{i}", b"\x03" + j(b))
    for i, b in enumerate([{"cols": 80, "rows": 24}, {"cols": 0, "rows": 1},
                           {"cols": None, "rows": None}]):
        write(c, f"resize{i}", b"\x04" + j(b))
    for i, b in enumerate([{"name": "snap-1"}, {"name": "x" * 129}, {}]):
        write(c, f"snap{i}", b"\x05" + j(b))
    for i, b in enumerate([b"", j({"timeout_seconds": 10}), j({"timeout_seconds": -1})]):
        write(c, f"stop{i}", b"\x06" + b)
    for i, b in enumerate([j({"name": "clone-1"}), b'{"name": 1}', b'{"a":1,"a":2}', b"[1]",
                           b'{"x": "\\u0000"}', b"{"]):
        write(c, f"clone{i}", b"\x07" + b)
    for i, m in enumerate([{"type": "resize", "cols": 120, "rows": 40},
                           {"type": "signal", "sig": 2}, {"type": "stdin_eof"},
                           {"type": "signal", "sig": 4294967298}, {"type": "nope"}, [1]]):
        write(c, f"control{i}", b"\x08" + j(m))
    for i, q in enumerate([b"2\n", b"2\no2", b"\no1", b"1001\n", b"x\nzzz", b"\no-1",
                           b"1000\no99999999999999999999"]):
        write(c, f"page{i}", b"\x09\x05" + q)
    for i, q in enumerate([b"true", b"0", b"yes", b""]):
        write(c, f"force{i}", b"\x0a\x00" + q)
    for i, q in enumerate([b"8080", b"0", b"65536", b"80x", b"-1"]):
        write(c, f"port{i}", b"\x0b\x00" + q)


if __name__ == "__main__":
    agent_untar()
    import_seeds()
    boxarchive_seeds()
    boxlite_rust_seeds()
    registries_seeds()
    qmp_seeds()
    serve_decode_seeds()
