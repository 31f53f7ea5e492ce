"""registry_fixture.py — test images and registries for the image tests: Debian's
docker-registry on 127.0.0.1 (plain, or TLS + htpasswd with a certificate made here), test
images built as exact tar layers (uid/gid, modes, setuid, hard links, whiteouts) assembled
into OCI layouts and pushed with skopeo in OCI and Docker formats, and a Debian bookworm +
python3 root filesystem made with mmdebstrap (cached by recipe hash)."""
import crypt
import gzip
import hashlib
import io
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request
import ssl

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
MTIME = 1700000000
CACHE = pathlib.Path(os.environ.get("BOXLITE_TEST_CACHE")
                     or pathlib.Path(os.environ.get("XDG_CACHE_HOME", "/var/tmp")) /
                     "boxlite-test-cache")
DEBIAN_RECIPE = ["--variant=minbase", "--include=python3", "bookworm"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """A docker-registry process serving from a temp dir."""

    def __init__(self, workdir, tls=False, users=None):
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.tls = tls
        self.users = users or {}
        self.cert = self.key = None
        cfg = [
            "version: 0.1",
            "log:",
            "  level: error",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {self.dir / 'data'}",
            "  delete:",
            "    enabled: true",
            "http:",
            f"  addr: {self.host}",
            "  secret: boxlite-test",
        ]
        if tls:
            self.cert, self.key = self.dir / "cert.pem", self.dir / "key.pem"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "2", "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1", "-keyout", str(self.key), "-out",
                            str(self.cert)], check=True, capture_output=True, timeout=60)
            cfg += ["  tls:", f"    certificate: {self.cert}", f"    key: {self.key}"]
        if self.users:
            htp = self.dir / "htpasswd"
            htp.write_text("".join(
                f"{u}:{crypt.crypt(p, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"
                for u, p in self.users.items()))
            cfg += ["auth:", "  htpasswd:", "    realm: boxlite-test", f"    path: {htp}"]
        (self.dir / "config.yml").write_text("\n".join(cfg) + "\n")
        self.log = open(self.dir / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(self.dir / "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self):
        url = f"{'https' if self.tls else 'http'}://{self.host}/v2/"
        ctx = ssl._create_unverified_context() if self.tls else None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: " +
                                   (self.dir / "registry.log").read_text()[-2000:])
            try:
                urllib.request.urlopen(url, timeout=2, context=ctx)
                return
            except urllib.error.HTTPError:
                return  # 401: up, with auth
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("docker-registry did not come up")

    def push(self, layout, name, fmt="oci"):
        """skopeo copy an OCI layout dir into this registry as name (repo:tag)."""
        args = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                "--format", "oci" if fmt == "oci" else "v2s2"]
        if self.users:
            u, p = next(iter(self.users.items()))
            args += ["--dest-creds", f"{u}:{p}"]
        if fmt == "oci":
            args.append("--preserve-digests")
        r = subprocess.run(args + [f"oci:{layout}", f"docker://{self.host}/{name}"],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RuntimeError(f"skopeo push {name}: {r.stderr[-2000:]}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ---- layers -------------------------------------------------------------------------------

class Layer:
    """A tar layer built entry by entry; `expect` records what the guest must show."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)
        self.entries = []

    def _add(self, name, typ, mode, uid=0, gid=0, data=None, link="", dev=(0, 0), xattrs=None):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = typ, mode, uid, gid, MTIME
        ti.linkname = link
        ti.devmajor, ti.devminor = dev
        if xattrs:
            ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
        if data is not None:
            ti.size = len(data)
            self.tar.addfile(ti, io.BytesIO(data))
        else:
            self.tar.addfile(ti)
        self.entries.append(dict(name=name.rstrip("/"), type=typ, mode=mode, uid=uid, gid=gid,
                                 link=link, size=len(data) if data is not None else 0,
                                 sha256=hashlib.sha256(data or b"").hexdigest()))
        return self

    def dir(self, name, mode=0o755, uid=0, gid=0):
        return self._add(name.rstrip("/") + "/", tarfile.DIRTYPE, mode, uid, gid)

    def file(self, name, data=b"", mode=0o644, uid=0, gid=0, xattrs=None):
        return self._add(name, tarfile.REGTYPE, mode, uid, gid, data=data, xattrs=xattrs)

    def symlink(self, name, target, uid=0, gid=0):
        return self._add(name, tarfile.SYMTYPE, 0o777, uid, gid, link=target)

    def hardlink(self, name, target):
        return self._add(name, tarfile.LNKTYPE, 0o644, link=target)

    def fifo(self, name, mode=0o600):
        return self._add(name, tarfile.FIFOTYPE, mode)

    def chardev(self, name, major, minor, mode=0o666):
        return self._add(name, tarfile.CHRTYPE, mode, dev=(major, minor))

    def raw(self):
        self.tar.close()
        return self.buf.getvalue()


def write_layout(path, layers, config, ref_name="latest"):
    """An OCI image layout at path. layers: [(bytes_uncompressed, "gzip"|"zstd"|"none")]."""
    path = pathlib.Path(path)
    if path.exists():
        shutil.rmtree(path)
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return "sha256:" + d, len(data)

    descs, diff_ids = [], []
    for raw, comp in layers:
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        if comp == "gzip":
            data, mt = gzip.compress(raw, 6, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
        elif comp == "zstd":
            data = subprocess.run(["zstd", "-q", "-c", "-3"], input=raw, capture_output=True,
                                  check=True).stdout
            mt = "application/vnd.oci.image.layer.v1.tar+zstd"
        else:
            data, mt = raw, "application/vnd.oci.image.layer.v1.tar"
        d, n = put(data)
        descs.append({"mediaType": mt, "digest": d, "size": n})
    cfg = {"architecture": "amd64", "os": "linux", "config": config,
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cd, cn = put(json.dumps(cfg).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                      "size": cn}, "layers": descs}
    md, mn = put(json.dumps(man).encode())
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
         "annotations": {"org.opencontainers.image.ref.name": ref_name}}]}))
    return md


BUSYBOX_APPLETS = ["sh", "ls", "cat", "stat", "id", "find", "echo", "test", "readlink", "sort",
                   "xargs", "wc", "printf", "touch", "mkdir", "rm", "sleep", "env",
                   "pwd", "whoami", "head", "tr", "cut", "sed", "grep", "true", "false"]


def busybox_layers():
    """Three layers over a static busybox: base, content with every kind of entry, and a
    layer of whiteouts. Returns (layers, expected) where expected maps path → entry."""
    base = Layer()
    for d in ["bin", "etc", "tmp", "root", "home", "proc", "sys", "dev", "usr", "usr/bin"]:
        base.dir(d, 0o1777 if d == "tmp" else 0o755)
    base.file("bin/busybox", pathlib.Path("/bin/busybox").read_bytes(), 0o755)
    for a in BUSYBOX_APPLETS:
        base.symlink(f"bin/{a}", "busybox")
    base.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n")
    base.file("etc/group", b"root:x:0:\nu:x:1000:\n")
    base.file("etc/motd", b"to be whited out\n")
    base.dir("opq", 0o755)
    base.file("opq/lower", b"hidden by the opaque dir\n")
    base.dir("gone", 0o755)
    base.file("gone/inner", b"removed with its dir\n")

    content = Layer()
    content.dir("data", 0o750, 1000, 1000)
    content.file("data/owned", b"uid 1000\n", 0o640, 1000, 1000)
    content.file("data/setuid", b"#!/bin/sh\necho su\n", 0o4755)
    content.file("data/setgid", b"x", 0o2711, 0, 50)
    content.dir("data/sticky", 0o1777)
    content.file("data/hard1", b"linked content\n", 0o600, 1000, 1000)
    content.hardlink("data/hard2", "data/hard1")
    content.hardlink("data/hard3", "data/hard1")
    content.symlink("data/rel", "owned")
    content.symlink("data/abs", "/etc/passwd")
    content.fifo("data/fifo", 0o620)
    content.chardev("data/null", 1, 3)
    content.file("data/big", bytes(range(256)) * 4096 * 3, 0o644)  # 3 MiB, not all zero
    content.file("data/cap", b"x", 0o755, xattrs={"user.boxlite": "hello"})
    content.dir("home/u", 0o700, 1000, 1000)
    content.file("home/u/.profile", b"echo hi\n", 0o644, 1000, 1000)
    content.file("opq/upper-old", b"replaced\n")

    wh = Layer()
    wh.file("etc/.wh.motd")
    wh.file(".wh.gone")
    wh.dir("opq", 0o711)
    wh.file("opq/.wh..wh..opq")
    wh.file("opq/upper", b"only this in opq\n")
    wh.file("etc/os-release", b'PRETTY_NAME="boxlite busybox test"\nID=busybox\n')
    layers = [base, content, wh]
    expected = {}
    for l in layers:
        for e in l.entries:
            expected[e["name"]] = e
    for gone in ["etc/motd", "gone", "gone/inner", "opq/lower", "opq/upper-old"]:
        expected.pop(gone, None)
    for n in list(expected):
        if "/.wh." in "/" + n:
            expected.pop(n)
    return layers, expected


BUSYBOX_CONFIG = {"Env": ["PATH=/bin:/usr/bin", "GREETING=from the image"],
                  "Entrypoint": ["/bin/echo", "entry"], "Cmd": ["default", "cmd"],
                  "WorkingDir": "/data", "User": "0"}


def build_busybox(root):
    """The busybox test image as OCI layouts (gzip layers; and one with a zstd layer)."""
    layers, expected = busybox_layers()
    raws = [l.raw() for l in layers]
    gz = pathlib.Path(root) / "busybox-oci"
    write_layout(gz, [(r, "gzip") for r in raws], BUSYBOX_CONFIG)
    zs = pathlib.Path(root) / "busybox-zstd"
    write_layout(zs, [(raws[0], "gzip"), (raws[1], "zstd"), (raws[2], "none")], BUSYBOX_CONFIG)
    return gz, zs, expected


# ---- Debian + python3 -------------------------------------------------------------------------

def debian_rootfs_tar():
    """A bookworm minbase + python3 rootfs tarball from mmdebstrap, cached by recipe."""
    key = hashlib.sha256(json.dumps(DEBIAN_RECIPE).encode()).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"debian-python-{key}.tar"
    if out.exists():
        return out
    tmp = CACHE / f"debian-python-{key}.{os.getpid()}.tmp.tar"  # .tar: a tarball, not a dir
    args = ["mmdebstrap", "--quiet"] + DEBIAN_RECIPE[:-1]
    if os.getuid() != 0:
        args.append("--mode=unshare")
    r = subprocess.run(args + [DEBIAN_RECIPE[-1], str(tmp)], capture_output=True, text=True,
                       timeout=1800)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError("mmdebstrap failed: " + r.stderr[-3000:])
    os.replace(tmp, out)
    return out


def build_debian(root):
    """Debian + python3 as a two-layer OCI layout (the rootfs; then an app layer with a
    whiteout and a file owned by uid 1000). Cached beside the rootfs tarball."""
    tar = debian_rootfs_tar()
    key = hashlib.sha256(tar.name.encode() + b"v2").hexdigest()[:12]
    layout = CACHE / f"debian-python-layout-{key}"
    if (layout / "index.json").exists():
        return layout
    app = Layer()
    app.dir("app", 0o755, 1000, 1000)
    app.file("app/hello.py", b"import sys\nprint('hello from python', sys.version.split()[0])\n",
             0o644, 1000, 1000)
    app.file("etc/.wh.motd")
    tmp = CACHE / f"debian-python-layout-{key}.tmp{os.getpid()}"
    write_layout(tmp, [(tar.read_bytes(), "gzip"), (app.raw(), "gzip")],
                 {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"],
                  "Cmd": ["python3"], "WorkingDir": "/app"})
    if layout.exists():
        shutil.rmtree(layout)
    os.replace(tmp, layout)
    return layout


def build_python_slim(root):
    """The Debian + python3 image as "python:slim" is used by the Python tests: the layout of
    build_debian plus one layer with /usr/local/bin/python → python3 (as the real python:slim
    has), so that `python -c …` works. Its blobs are hard links to the cached layout's."""
    base = build_debian(root)
    extra = Layer()
    for d in ["usr", "usr/local", "usr/local/bin"]:
        extra.dir(d)
    extra.symlink("usr/local/bin/python", "/usr/bin/python3")
    raw = extra.raw()
    key = hashlib.sha256(base.name.encode() + raw).hexdigest()[:12]
    layout = CACHE / f"python-slim-layout-{key}"
    if (layout / "index.json").exists():
        return layout
    tmp = CACHE / f"python-slim-layout-{key}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    blobs = tmp / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for b in (base / "blobs" / "sha256").iterdir():
        os.link(b, blobs / b.name)

    def blob(digest):
        return json.loads((base / "blobs" / "sha256" / digest[7:]).read_bytes())

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return "sha256:" + d, len(data)

    index = json.loads((base / "index.json").read_text())
    man = blob(index["manifests"][0]["digest"])
    cfg = blob(man["config"]["digest"])
    gz = gzip.compress(raw, 6, mtime=0)
    d, n = put(gz)
    man["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                          "digest": d, "size": n})
    cfg["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(raw).hexdigest())
    man["config"]["digest"], man["config"]["size"] = put(json.dumps(cfg).encode())
    md, mn = put(json.dumps(man).encode())
    (tmp / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index["manifests"][0].update(digest=md, size=mn)
    (tmp / "index.json").write_text(json.dumps(index))
    if layout.exists():
        shutil.rmtree(layout)
    os.replace(tmp, layout)
    return layout
