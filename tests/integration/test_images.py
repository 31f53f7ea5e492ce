"""test_images.py — any OCI image (issue 3) end to end: pulls from a real docker-registry on
127.0.0.1 (OCI, Docker schema2, zstd layers; TLS + htpasswd), a Debian + python3 image through
a search mirror, exact layer contents in the guest, images/rmi/import, and hostile input from
a scripted registry that must fail clearly with nothing half-cached."""
import gzip
import hashlib
import http.server
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import registry_fixture as rf  # noqa: E402
from boxlite_paths import BOXLITE  # noqa: E402


# ---- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("images")


@pytest.fixture(scope="session")
def busybox(work):
    return rf.build_busybox(work)  # (gzip layout, zstd layout, expected entries)


@pytest.fixture(scope="session")
def registry(work, busybox):
    reg = rf.Registry(work / "registry")
    gz, zs, _ = busybox
    reg.push(gz, "test/busybox:oci", "oci")
    reg.push(gz, "test/busybox:v2s2", "v2s2")
    reg.push(zs, "test/busybox:zstd", "oci")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def debian(work, registry):
    layout = rf.build_debian(work)
    registry.push(layout, "library/python:slim", "v2s2")
    return layout


class ImageCLI:
    def __init__(self, base_env, home):
        self.env = dict(base_env)
        self.env["BOXLITE_HOME"] = str(home)
        self.home = pathlib.Path(home)

    def run(self, *args, timeout=300, check=False, env_extra=None):
        r = subprocess.run([str(BOXLITE), *args], capture_output=True, timeout=timeout,
                           env=dict(self.env, **(env_extra or {})))
        if check:
            assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
        return r

    def images(self):
        return json.loads(self.run("images", "--format", "json", check=True).stdout)

    def leftovers(self):
        tmp = self.home / "images" / "tmp"
        return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


@pytest.fixture
def icli(box_env, tmp_path):
    """A CLI with an empty home of its own."""
    return ImageCLI(box_env, tmp_path / "home")


@pytest.fixture(scope="session")
def shared_cli(box_env, tmp_path_factory):
    return ImageCLI(box_env, tmp_path_factory.mktemp("images-home"))


def reg_flag(reg, *extra):
    return ["--registry", ",".join([reg.host, "http", *extra])]


def debugfs(image, cmd):
    r = subprocess.run(["debugfs", "-R", cmd, str(image)], capture_output=True, text=True,
                       timeout=60)
    return r.stdout


def rootfs_of(cli, name):
    info = next(i for i in cli.images() if i["name"] == name)
    return cli.home / "images" / "rootfs" / (info["id"][7:] + ".ext4")


# ---- pulls from the real registry -----------------------------------------------------------

def test_pull_oci_docker_and_zstd_share_layers(shared_cli, registry):
    for tag in ["oci", "v2s2", "zstd"]:
        r = shared_cli.run(*reg_flag(registry), "pull", "-q", f"{registry.host}/test/busybox:{tag}",
                           check=True)
        assert r.stdout.decode().strip() == f"{registry.host}/test/busybox:{tag}"
    imgs = {i["tag"]: i for i in shared_cli.images()}
    assert set(imgs) >= {"oci", "v2s2", "zstd"}
    assert len({i["id"] for i in imgs.values()}) == 1, "same config: one image id"
    assert len({i["digest"] for i in imgs.values()}) == 3, "three manifests"
    assert all(i["size"] > 0 and i["cached_at"] > 0 for i in imgs.values())
    rootfs = list((shared_cli.home / "images" / "rootfs").glob("*.ext4"))
    assert len(rootfs) == 1, "one base filesystem for the three names"
    blobs = list((shared_cli.home / "images" / "blobs" / "sha256").iterdir())
    # 3 manifests + 1 config + 3 gzip layers + 1 zstd + 1 plain layer
    assert len(blobs) == 9, [b.name for b in blobs]
    assert shared_cli.leftovers() == []
    assert oct(os.stat(rootfs[0]).st_mode & 0o777) == "0o444"
    fsck = subprocess.run(["e2fsck", "-fn", str(rootfs[0])], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_registry_flag_with_search_resolves_short_names(icli, registry):
    """--registry HOST,http,search: a short name is looked up on HOST (not docker.io)."""
    r = icli.run("--registry", f"{registry.host},http,search", "pull", "-q", "test/busybox:oci")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == f"{registry.host}/test/busybox:oci"
    assert [i["name"] for i in icli.images()] == [f"{registry.host}/test/busybox:oci"]
    # without search the same flag leaves short names to docker.io, where this one fails
    r = icli.run("--registry", f"{registry.host},http", "pull", "-q", "test/busybox:oci",
                 env_extra={"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"})
    assert r.returncode != 0 and b"docker.io" in r.stderr, r.stderr


def test_libcurl_is_loaded_only_by_a_pull(icli, registry):
    """Issue 12, load what a verb needs: listing images never loads libcurl (nor do exec, ls,
    --version: they go nowhere near a registry); a pull loads it when it opens the registry.
    The dynamic loader's own trace (LD_DEBUG=files) says which objects came in."""
    trace = {"LD_DEBUG": "files"}
    for verb in (["--version"], ["images"], ["ls"]):
        r = icli.run(*verb, env_extra=trace)
        assert r.returncode == 0, r.stderr
        assert b"libcurl" not in r.stderr, (verb, r.stderr[-2000:])
    r = icli.run("--registry", f"{registry.host},http,search", "pull", "-q", "test/busybox:oci",
                 env_extra=trace)
    assert r.returncode == 0, r.stderr[-2000:]
    assert b"libcurl.so.4" in r.stderr, r.stderr[-2000:]


def test_stored_image_needs_no_network(icli, work, busybox):
    """A second pull is served from the store, and a stored image runs, with the registry
    stopped (by tag and by digest)."""
    gz, _, _ = busybox
    reg = rf.Registry(work / "offline-registry")
    try:
        reg.push(gz, "test/busybox:1", "oci")
        name = f"{reg.host}/test/busybox:1"
        icli.run(*reg_flag(reg), "pull", "-q", name, check=True)
        digest = icli.images()[0]["digest"]
        by_digest = f"{reg.host}/test/busybox@{digest}"
        icli.run(*reg_flag(reg), "pull", "-q", by_digest, check=True)
    finally:
        reg.stop()
    imgs = icli.images()
    assert sorted(i["name"] for i in imgs) == sorted([name, by_digest])
    assert {i["digest"] for i in imgs} == {digest} and len({i["id"] for i in imgs}) == 1
    for ref in (name, by_digest):
        r = icli.run(*reg_flag(reg), "run", "--rm", "--entrypoint", "", ref, "--", "cat",
                     "/data/owned")
        assert (r.returncode, r.stdout) == (0, b"uid 1000\n"), (ref, r.stderr)


def test_second_pull_is_served_from_the_store(icli, evil):
    """Pulling again asks the registry for the manifest only: every blob is in the store."""
    ref = f"{evil}/good:latest"
    icli.run("--registry", f"{evil},http", "pull", "-q", ref, check=True)
    assert any("/blobs/" in p for p in served), served
    served.clear()
    icli.run("--registry", f"{evil},http", "pull", "-q", ref, check=True)
    assert served and not [p for p in served if "/blobs/" in p], served


STAT = ('find / -xdev -path /proc -prune -o -print | while read -r p; do '
        'stat -c "%n|%f|%u|%g|%h|%s|%i" "$p"; done; '
        'for l in $(find / -xdev -type l); do echo "L|$l|$(readlink "$l")"; done; '
        'find / -xdev -type f | while read -r f; do echo "H|$f|$(/bin/busybox sha256sum < "$f")"; done')


def test_layers_exact_in_guest(shared_cli, registry, busybox):
    _, _, expected = busybox
    name = f"{registry.host}/test/busybox:v2s2"
    r = shared_cli.run(*reg_flag(registry), "run", "--rm", "--entrypoint", "", name, "--", "sh",
                       "-c", STAT, check=True)
    seen, links, sums = {}, {}, {}
    for line in r.stdout.decode().splitlines():
        if line.startswith(("L|", "H|")):
            kind, p, t = line.split("|", 2)
            (links if kind == "L" else sums)[p.lstrip("/")] = t.split()[0] if kind == "H" else t
            continue
        p, mode, uid, gid, nlink, size, ino = line.split("|")
        seen[p.lstrip("/")] = (int(mode, 16), int(uid), int(gid), int(nlink), int(size), int(ino))
    kinds = {tarfile.REGTYPE: 0o100000, tarfile.DIRTYPE: 0o040000, tarfile.SYMTYPE: 0o120000,
             tarfile.LNKTYPE: 0o100000, tarfile.FIFOTYPE: 0o010000, tarfile.CHRTYPE: 0o020000}
    for path, e in expected.items():
        if path in ("proc", "sys", "dev"):
            continue  # mounted over in the guest
        assert path in seen, f"{path} missing in the guest"
        mode, uid, gid, nlink, size, ino = seen[path]
        # a hard link is its target's inode: the target's header gives mode, owner, content
        src = expected[e["link"]] if e["type"] == tarfile.LNKTYPE else e
        if e["type"] == tarfile.LNKTYPE:
            assert ino == seen[e["link"]][5], f"{path} is not a hard link of {e['link']}"
        want_mode = kinds[src["type"]] | (0o777 if src["type"] == tarfile.SYMTYPE
                                          else src["mode"])
        assert (mode, uid, gid) == (want_mode, src["uid"], src["gid"]), path
        if e["type"] == tarfile.SYMTYPE:
            assert links[path] == e["link"], path
        if src["type"] == tarfile.REGTYPE:
            assert size == src["size"], path
            assert sums[path] == src["sha256"], f"{path}: content differs from the layer"
    assert seen["data/hard1"][3] == 3 and seen["data/hard2"][3] == 3
    for gone in ["etc/motd", "gone", "opq/lower", "opq/upper-old"]:
        assert gone not in seen, f"{gone} should have been whited out"
    assert seen["opq"][0] & 0o7777 == 0o711 and "opq/upper" in seen
    # xattrs were written into the image (checked on the host: busybox has no getfattr)
    out = debugfs(rootfs_of(shared_cli, name), "ea_list /data/cap")
    assert "user.boxlite" in out and "hello" in out


def test_image_config_is_honoured(shared_cli, registry):
    name = f"{registry.host}/test/busybox:oci"
    r = shared_cli.run(*reg_flag(registry), "run", "--rm", name, check=True)
    assert r.stdout == b"entry default cmd\n"  # Entrypoint + Cmd
    r = shared_cli.run("run", "--rm", "--entrypoint", "", name, "--", "sh", "-c",
                       'echo "$GREETING|$(pwd)|$(id -u)"', check=True)
    assert r.stdout == b"from the image|/data|0\n"  # Env, WorkingDir, User


def test_images_rmi_and_garbage_collection(icli, registry):
    a, b = f"{registry.host}/test/busybox:oci", f"{registry.host}/test/busybox:zstd"
    icli.run(*reg_flag(registry), "pull", "-q", a, check=True)
    icli.run(*reg_flag(registry), "pull", "-q", b, check=True)
    table = icli.run("images", check=True).stdout.decode()
    assert "REPOSITORY" in table and "test/busybox" in table and "zstd" in table
    blobs = icli.home / "images" / "blobs" / "sha256"
    before = len(list(blobs.iterdir()))
    icli.run("rmi", a, check=True)
    assert [i["name"] for i in icli.images()] == [b]
    assert len(list(blobs.iterdir())) < before, "a's manifest is collected"
    assert len(list((icli.home / "images" / "rootfs").glob("*.ext4"))) == 1, "b still uses it"
    icli.run("rmi", b, check=True)
    assert icli.images() == []
    assert list(blobs.iterdir()) == []
    assert list((icli.home / "images" / "rootfs").glob("*.ext4")) == []
    r = icli.run("rmi", b)
    assert r.returncode != 0 and b"not in the store" in r.stderr


def test_concurrent_pulls_neither_corrupt_nor_duplicate(icli, evil):
    name = f"{evil}/slow:latest"  # its layer takes 3 s: the three pulls overlap
    procs, ends = [], []
    for _ in range(3):
        procs.append((time.monotonic(), subprocess.Popen(
            [str(BOXLITE), "--registry", f"{evil},http", "pull", "-q", name], env=icli.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    for t0, p in procs:
        out, err = p.communicate(timeout=300)
        ends.append(time.monotonic())
        assert p.returncode == 0, err
    assert max(t0 for t0, _ in procs) < min(ends), "the pulls did not overlap"
    assert len(icli.images()) == 1
    rootfs = list((icli.home / "images" / "rootfs").glob("*.ext4"))
    assert len(rootfs) == 1
    fsck = subprocess.run(["e2fsck", "-fn", str(rootfs[0])], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "slow" in debugfs(rootfs[0], "cat /etc/slow")
    assert icli.leftovers() == []


# ---- import -----------------------------------------------------------------------------------

def test_import_oci_layout_docker_save_and_rootfs(icli, busybox, tmp_path):
    gz, _, _ = busybox
    r = icli.run("import", str(gz), "localhost/imported:oci", check=True)
    assert r.stdout.strip() == b"localhost/imported:oci"
    # docker save: manifest.json + config + uncompressed layer tars
    idx = json.loads((gz / "index.json").read_text())
    man = json.loads((gz / "blobs" / "sha256" / idx["manifests"][0]["digest"][7:]).read_bytes())
    save = tmp_path / "saved.tar"
    with tarfile.open(save, "w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        cfg = (gz / "blobs" / "sha256" / man["config"]["digest"][7:]).read_bytes()
        add(hashlib.sha256(cfg).hexdigest() + ".json", cfg)
        layers = []
        for i, l in enumerate(man["layers"]):
            raw = gzip.decompress((gz / "blobs" / "sha256" / l["digest"][7:]).read_bytes())
            add(f"l{i}/layer.tar", raw)
            layers.append(f"l{i}/layer.tar")
        add("manifest.json", json.dumps([{"Config": hashlib.sha256(cfg).hexdigest() + ".json",
                                          "RepoTags": ["saved/busybox:1"],
                                          "Layers": layers}]).encode())
    r = icli.run("import", str(save), check=True)
    assert r.stdout.strip() == b"docker.io/saved/busybox:1"
    # a plain rootfs directory and tarball
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hello").write_text("hi\n")
    os.symlink("hello", root / "etc" / "link")
    icli.run("import", str(root), "plain/dir", check=True)
    tarball = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tarball, "w:gz") as t:
        t.add(root, arcname=".")
    r = icli.run("import", str(tarball), check=True)
    assert r.stdout.strip() == b"localhost/rootfs:latest"
    names = {i["name"] for i in icli.images()}
    assert {"localhost/imported:oci", "docker.io/saved/busybox:1",
            "docker.io/plain/dir:latest", "localhost/rootfs:latest"} <= names
    ids = {i["name"]: i["id"] for i in icli.images()}
    assert ids["localhost/imported:oci"] == ids["docker.io/saved/busybox:1"]
    for n in ["docker.io/plain/dir:latest", "localhost/rootfs:latest"]:
        img = rootfs_of(icli, n)
        assert debugfs(img, "cat /etc/hello") == "hi\n"
        assert 'Fast link dest: "hello"' in debugfs(img, "stat /etc/link")
    assert "data" in debugfs(rootfs_of(icli, "docker.io/saved/busybox:1"), "ls /")
    assert icli.leftovers() == []


# ---- auth and TLS -------------------------------------------------------------------------------

def test_auth_registry_with_tls_and_htpasswd(icli, work, busybox):
    gz, _, _ = busybox
    reg = rf.Registry(work / "auth-registry", tls=True, users={"alice": "s3cret"})
    try:
        reg.push(gz, "private/busybox:1", "oci")
        name = f"{reg.host}/private/busybox:1"
        r = icli.run("--registry", f"{reg.host},ca={reg.cert}", "pull", "-q", name)
        assert r.returncode != 0 and b"authentication required" in r.stderr, r.stderr
        r = icli.run("--registry", f"{reg.host},ca={reg.cert},user=alice,password=wrong", "pull",
                     "-q", name)
        assert r.returncode != 0 and b"authentication failed" in r.stderr, r.stderr
        r = icli.run("--registry", f"{reg.host},user=alice,password=s3cret", "pull", "-q", name)
        assert r.returncode != 0 and (b"certificate" in r.stderr or b"SSL" in r.stderr), r.stderr
        assert icli.images() == [] and icli.leftovers() == []
        icli.run("--registry", f"{reg.host},ca={reg.cert},user=alice,password=s3cret", "pull",
                 "-q", name, check=True)
        assert [i["name"] for i in icli.images()] == [name]
        # skip-verify accepts the self-signed certificate without the CA file
        icli.run("rmi", name, check=True)
        icli.run("--registry", f"{reg.host},skip-verify,user=alice,password=s3cret", "pull",
                 "-q", name, check=True)
        assert [i["name"] for i in icli.images()] == [name]
    finally:
        reg.stop()


# ---- hostile registries -------------------------------------------------------------------------

served = []  # every path the scripted registries were asked for


class Scripted(http.server.ThreadingHTTPServer):
    """A registry that serves exactly what a test put in `routes` (path → handler)."""


def scripted_registry():
    routes = {}

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            served.append(self.path)
            h = routes.get(self.path) or routes.get(self.path.split("?")[0])
            if h is None:
                body = b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
                if self.path.startswith("/v2/") and "/manifests/" in self.path:
                    repo = self.path[4:self.path.index("/manifests/")]
                    if not any(k.startswith(f"/v2/{repo}/") for k in routes):
                        body = b'{"errors":[{"code":"NAME_UNKNOWN"}]}'
                self.send_response(200 if self.path == "/v2/" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            h(self)

    srv = Scripted(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, routes, f"127.0.0.1:{srv.server_address[1]}"


def send(body, ctype="application/octet-stream", length=None):
    def h(req):
        req.send_response(200)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body) if length is None else length))
        req.end_headers()
        req.wfile.write(body)
    return h


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def serve_image(routes, repo, layers, manifest_extra=None, blob_override=None):
    """Put a one-config image with the given (compressed) layer blobs into routes."""
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                      "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                      "digest": sha(cfg), "size": len(cfg)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": sha(l), "size": len(l)} for l in layers]}
    man.update(manifest_extra or {})
    mb = json.dumps(man).encode()
    routes[f"/v2/{repo}/manifests/latest"] = send(mb, man["mediaType"])
    routes[f"/v2/{repo}/blobs/{sha(cfg)}"] = send(cfg)
    for l in layers:
        routes[f"/v2/{repo}/blobs/{sha(l)}"] = send(l)
    for d, h in (blob_override or {}).items():
        routes[f"/v2/{repo}/blobs/{d}"] = h
    return man


def tar_of(*entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, typ, data, link in entries:
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname, ti.mode = typ, link, 0o644
            if data is not None:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(ti)
    return gzip.compress(b.getvalue())


R, D, S = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE


token_requests = []
cdn_auth = []


@pytest.fixture(scope="module")
def evil():
    srv, routes, host = scripted_registry()
    good = tar_of(("etc/", D, None, ""), ("etc/ok", R, b"ok\n", ""))
    serve_image(routes, "good", [good])
    # digest mismatch: the blob served is not the one named
    other = bytearray(good)
    other[len(other) // 2] ^= 0xFF  # same size, other content
    serve_image(routes, "mismatch", [good], blob_override={sha(good): send(bytes(other))})
    serve_image(routes, "truncated", [good[:len(good) // 2]])
    serve_image(routes, "dotdot", [tar_of(("../escape", R, b"x", ""))])
    serve_image(routes, "absolute", [tar_of(("/etc/abs", R, b"x", ""))])
    serve_image(routes, "symlink", [tar_of(("etc/", D, None, ""),
                                           ("evil", S, None, "/etc"),
                                           ("evil/written-through", R, b"inside\n", ""),
                                           ("tmp/", D, None, ""),
                                           ("up", S, None, "../../../../tmp"),
                                           ("up/boxlite-escape-test", R, b"x", ""))])
    big = b'{"schemaVersion":2,"pad":"' + b"x" * (5 << 20) + b'"}'
    routes["/v2/huge/manifests/latest"] = send(big, "application/vnd.oci.image.manifest.v1+json")
    odd = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.example.weird+json"})
    routes["/v2/weird/manifests/latest"] = send(odd.encode(), "application/vnd.example.weird+json")
    badlayer = tar_of(("f", R, b"x", ""))
    man = serve_image(routes, "badlayertype", [badlayer])
    man["layers"][0]["mediaType"] = "application/vnd.example.layer+lzma"
    routes["/v2/badlayertype/manifests/latest"] = send(json.dumps(man).encode(), man["mediaType"])
    routes["/v2/known/blobs/none"] = send(b"")  # makes "known" a repository (tag 404 only)
    # a config over the 8 MiB cap, valid JSON with the right digest: only the cap refuses it
    hcfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                       "rootfs": {"type": "layers", "diff_ids": []}, "pad": ""}).encode()
    hcfg = hcfg[:-2] + b"x" * ((9 << 20) - len(hcfg)) + b'"}'
    man = serve_image(routes, "hugeconfig", [good])
    man["config"].update(digest=sha(hcfg), size=len(hcfg))
    routes["/v2/hugeconfig/manifests/latest"] = send(json.dumps(man).encode(), man["mediaType"])
    routes[f"/v2/hugeconfig/blobs/{sha(hcfg)}"] = send(hcfg)
    # slow: its layer takes 3 s to start, so that concurrent pulls overlap
    slow_layer = tar_of(("etc/", D, None, ""), ("etc/slow", R, b"slow\n", ""))

    def slow(req):
        time.sleep(3)
        send(slow_layer)(req)
    serve_image(routes, "slow", [slow_layer], blob_override={sha(slow_layer): slow})

    # dropped connections: "flaky" drops once then serves; "dead" always drops
    flaky_layer = tar_of(("etc/", D, None, ""), ("etc/flaky", R, os.urandom(300000), ""))
    state = {"n": 0}

    def drop(req, body=flaky_layer, always=False):
        if not always:
            state["n"] += 1
        if always or state["n"] == 1:
            req.send_response(200)
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body[:len(body) // 3])
            req.wfile.flush()
            req.connection.shutdown(2)
            return
        send(body)(req)
    serve_image(routes, "flaky", [flaky_layer], blob_override={sha(flaky_layer): drop})
    serve_image(routes, "dead", [flaky_layer],
                blob_override={sha(flaky_layer): lambda r: drop(r, always=True)})

    # a Docker Hub-style token service: 401 + WWW-Authenticate Bearer, token from the realm
    tok_layer = tar_of(("etc/", D, None, ""), ("etc/tok", R, b"token ok\n", ""))
    serve_image(routes, "tokened", [tok_layer])
    token_requests.clear()

    def need_bearer(h):
        def w(req):
            if req.headers.get("Authorization") == "Bearer good-token":
                return h(req)
            req.send_response(401)
            req.send_header("WWW-Authenticate", f'Bearer realm="http://{host}/token",'
                            'service="scripted",scope="repository:tokened:pull"')
            req.send_header("Content-Length", "0")
            req.end_headers()
        return w

    for path in [p for p in routes if p.startswith("/v2/tokened/")]:
        routes[path] = need_bearer(routes[path])
    # "redirected": behind the same token, its layer answers 307 to another origin (a CDN);
    # the token must not travel there
    cdn_srv, cdn_routes, cdn_host = scripted_registry()
    cdn_port = cdn_host.split(":")[1]
    red_layer = tar_of(("etc/", D, None, ""), ("etc/red", R, b"redirected ok\n", ""))
    serve_image(routes, "redirected", [red_layer])
    cdn_auth.clear()

    def cdn(req):
        cdn_auth.append(req.headers.get("Authorization"))
        send(red_layer)(req)
    cdn_routes["/cdn/layer"] = cdn

    def to_cdn(req):
        req.send_response(307)
        req.send_header("Location", f"http://localhost:{cdn_port}/cdn/layer")
        req.send_header("Content-Length", "0")
        req.end_headers()
    routes[f"/v2/redirected/blobs/{sha(red_layer)}"] = to_cdn
    for path in [p for p in routes if p.startswith("/v2/redirected/")]:
        routes[path] = need_bearer(routes[path])

    def token(req):
        token_requests.append(req.path)
        send(b'{"token":"good-token","expires_in":300}', "application/json")(req)
    routes["/token"] = token
    yield host
    srv.shutdown()
    cdn_srv.shutdown()


@pytest.mark.parametrize("repo,message", [
    ("mismatch", "digest mismatch"),
    ("truncated", "truncated gzip"),
    ("dotdot", "escapes"),
    ("absolute", "absolute path"),
    ("huge", "manifest is over the 4194304 byte cap"),
    ("hugeconfig", "image config of 9437184 bytes is over the 8388608 byte cap"),
    ("weird", "unsupported manifest media type"),
    ("badlayertype", "unsupported layer media type"),
    ("nosuchrepo", "not found"),
    ("known", "tag or digest latest not found"),
    ("dead", "gave up"),
])
def test_bad_input_fails_clearly_and_caches_nothing(icli, evil, repo, message):
    r = icli.run("--registry", f"{evil},http", "pull", "-q", f"{evil}/{repo}:latest", timeout=120)
    assert r.returncode != 0
    assert message.encode() in r.stderr, r.stderr
    assert icli.images() == []
    assert icli.leftovers() == []
    assert list((icli.home / "images" / "rootfs").glob("*.ext4")) == []


def test_dropped_connection_is_retried(icli, evil):
    r = icli.run("--registry", f"{evil},http", "pull", "-q", f"{evil}/flaky:latest", timeout=120)
    assert r.returncode == 0, r.stderr
    assert b"retrying" in r.stderr


def test_symlinks_in_layers_stay_inside_the_image(icli, evil):
    marker = pathlib.Path("/tmp/boxlite-escape-test")
    marker.unlink(missing_ok=True)
    icli.run("--registry", f"{evil},http", "pull", "-q", f"{evil}/symlink:latest", check=True)
    assert not marker.exists(), "a layer wrote outside the image"
    img = rootfs_of(icli, f"{evil}/symlink:latest")
    assert "inside" in debugfs(img, "cat /etc/written-through")
    assert "boxlite-escape-test" in debugfs(img, "ls /tmp")


def test_anonymous_bearer_token_flow(icli, evil):
    r = icli.run("--registry", f"{evil},http", "pull", "-q", f"{evil}/tokened:latest", timeout=120)
    assert r.returncode == 0, r.stderr
    assert token_requests, "the token service was never asked"
    assert all("scope=repository%3Atokened%3Apull" in p or "scope=repository:tokened:pull" in p
               for p in token_requests), token_requests
    assert all("service=scripted" in p for p in token_requests), token_requests
    assert "token ok" in debugfs(rootfs_of(icli, f"{evil}/tokened:latest"), "cat /etc/tok")


def test_blob_redirect_carries_no_credentials(icli, evil):
    r = icli.run("--registry", f"{evil},http", "pull", "-q", f"{evil}/redirected:latest",
                 timeout=120)
    assert r.returncode == 0, r.stderr
    assert cdn_auth, "the redirect was never followed"
    assert cdn_auth == [None] * len(cdn_auth), cdn_auth
    assert "redirected ok" in debugfs(rootfs_of(icli, f"{evil}/redirected:latest"), "cat /etc/red")


def test_rmi_refuses_an_image_a_box_uses(icli, evil):
    ref = f"{evil}/good:latest"
    icli.run("--registry", f"{evil},http", "create", "--name", "uses-good", ref, check=True)
    r = icli.run("rmi", ref)
    assert r.returncode == 125 and b"used by a box" in r.stderr, r.stderr
    assert [i["name"] for i in icli.images()] == [ref]
    rootfs = rootfs_of(icli, ref)
    icli.run("rmi", "-f", ref, check=True)  # forced: the name goes
    assert icli.images() == []
    assert rootfs.exists(), "the box's base went with the name"
    icli.run("rm", "uses-good", check=True)


def test_pull_progress_on_a_terminal_and_quiet_otherwise(icli, evil):
    ref = f"{evil}/flaky:latest"  # a 300 kB layer: enough for a progress line
    cmd = f"{BOXLITE} --registry {evil},http pull {ref}"
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True,
                       env=icli.env, timeout=120)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, out
    assert "layer 1/1" in out and "/s" in out and "KiB" in out, out
    assert f"done: {ref}" in out, out
    icli.run("rmi", ref, check=True)
    r = icli.run("--registry", f"{evil},http", "pull", ref, check=True)  # not a tty
    assert b"layer 1/1" not in r.stderr and r.stdout.strip() == ref.encode()


def test_good_scripted_image_pulls(icli, evil):
    icli.run("--registry", f"{evil},http", "pull", "-q", f"{evil}/good:latest", check=True)
    assert "ok" in debugfs(rootfs_of(icli, f"{evil}/good:latest"), "cat /etc/ok")


# ---- Debian + python through a mirror -----------------------------------------------------------

def test_python_slim_through_search_mirror(icli, registry, debian):
    (icli.home).mkdir(parents=True, exist_ok=True)
    (icli.home / "registries.json").write_text(json.dumps({"registries": [
        {"host": registry.host, "transport": "http", "search": True}]}))
    r = icli.run("pull", "python:slim", check=True, timeout=600)
    assert r.stdout.strip() == f"{registry.host}/library/python:slim".encode()
    r = icli.run("run", "--rm", "python:slim", "python3", "/app/hello.py", check=True, timeout=300)
    assert r.stdout.startswith(b"hello from python 3.11")
    # ownership, modes and links of the Debian layer as in its tar headers
    tar = rf.debian_rootfs_tar()
    want = {}
    with tarfile.open(tar) as t:
        for m in t.getmembers():
            p = m.name.lstrip("./")
            # /etc/resolv.conf and /etc/hosts are the runtime's (written at boot, like docker's)
            if p.startswith(("usr/bin/", "usr/sbin/", "etc/")) and not p.startswith(
                    ("etc/motd", "etc/resolv.conf", "etc/hosts")):
                want[p] = m
    script = ('cd / && for p in "$@"; do stat -c "%n|%a|%u|%g|%h|%F" "$p"; done')
    r = icli.run("run", "--rm", "python:slim", "sh", "-c", script, "sh", *sorted(want),
                 check=True, timeout=300)
    got = {l.split("|")[0]: l.split("|")[1:] for l in r.stdout.decode().splitlines()}
    for p, m in want.items():
        assert p in got, p
        mode, uid, gid, nlink, kind = got[p]
        if m.issym():
            assert kind == "symbolic link", p
            continue
        if m.islnk():
            continue
        assert (int(mode, 8), int(uid), int(gid)) == (m.mode & 0o7777, m.uid, m.gid), p
    r = icli.run("run", "--rm", "python:slim", "sh", "-c",
                 "stat -c '%u %a' /app/hello.py; test -e /etc/motd && echo motd || echo nomotd",
                 check=True)
    assert r.stdout == b"1000 644\nnomotd\n"


# ---- the built-in image shipped compressed (the wheel) ------------------------------------------

def test_a_compressed_default_image_is_inflated_sparse_and_checked(box_env, tmp_path):
    """A guest directory with default.ext4.gz and no default.ext4 (what the wheel ships: a zip
    keeps no holes) gives the store a sparse base that hashes to default.ext4.sha256; a damaged
    or lying one fails naming the file, and leaves no base behind."""
    from boxlite_paths import BUILD
    src = BUILD / "guest"
    guest = tmp_path / "guest"
    guest.mkdir()
    for f in ("vmlinux", "initramfs.cpio.gz", "default.ext4.sha256", "kernel-version"):
        os.symlink(src / f, guest / f)
    raw = (src / "default.ext4").read_bytes()
    (guest / "default.ext4.gz").write_bytes(gzip.compress(raw, 1))
    want = (src / "default.ext4.sha256").read_text().strip()

    def create(home):
        env = dict(box_env, BOXLITE_GUEST_DIR=str(guest), BOXLITE_HOME=str(home))
        return subprocess.run([str(BOXLITE), "create"], capture_output=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=300)

    r = create(tmp_path / "h1")
    assert r.returncode == 0, r.stderr
    assert b"preparing" not in r.stderr  # no terminal, no progress line
    base = tmp_path / "h1" / "images" / "rootfs" / f"{want}.ext4"
    st = base.stat()
    assert st.st_size == len(raw) and st.st_blocks * 512 < len(raw) // 4, st  # holes kept
    assert hashlib.sha256(base.read_bytes()).hexdigest() == want
    assert (st.st_mode & 0o777) == 0o444
    # a gz that inflates to other bytes: refused, named, nothing left in the store
    (guest / "default.ext4.gz").write_bytes(gzip.compress(raw[:-1] + b"\x01", 1))
    r = create(tmp_path / "h2")
    assert r.returncode != 0 and b"default.ext4.gz is damaged" in r.stderr, r.stderr
    assert not list((tmp_path / "h2" / "images" / "rootfs").iterdir())
    assert not list((tmp_path / "h2" / "images" / "rootfs").glob("*.tmp.*"))
    # a truncated one
    (guest / "default.ext4.gz").write_bytes(gzip.compress(raw, 1)[:100000])
    r = create(tmp_path / "h3")
    assert r.returncode != 0 and b"default.ext4.gz" in r.stderr, r.stderr
    assert not list((tmp_path / "h3" / "images" / "rootfs").iterdir())
