"""oci_helpers.py — what the OCI runtime tests share (a module of its own name: `from conftest
import` is ambiguous beside tests/serve's conftest): fixtures for the boxlite-runtime binary, this pytest
process made a child subreaper (as conmon and containerd's shim are: a container's keeper is
reparented to us when `create` exits, so we can wait for its exit status), bundles over a
static busybox rootfs, and a helper that runs the runtime with a private --root and a JSON log."""
import ctypes
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from boxlite_paths import BUILD
from registry_fixture import Layer, Registry, write_layout

RUNTIME = BUILD / "src" / "oci" / "boxlite-runtime"
PR_SET_CHILD_SUBREAPER = 36
APPLETS = ["sh", "echo", "cat", "sleep", "hostname", "id", "pwd", "env", "true", "false", "ls",
           "test", "wc", "touch", "httpd", "wget", "seq"]


@pytest.fixture(scope="module", autouse=True)
def subreaper():
    """For the OCI modules only: the rest of the suite expects orphans to go to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def make_rootfs(root):
    """A directory root filesystem: static busybox and its applets."""
    root = pathlib.Path(root)
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"]:
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    for a in APPLETS:
        (root / "bin" / a).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


def config(args, **kw):
    c = {"ociVersion": "1.0.2",
         "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                     "env": ["PATH=/bin", "GREETING=from config.json"], "cwd": "/"},
         "root": {"path": "rootfs"}, "hostname": "ocitest",
         "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
         "linux": {"namespaces": [{"type": "network"}, {"type": "pid"}]}}
    c.update(kw)
    return c


class Runtime:
    def __init__(self, tmp, env):
        self.root = tmp / "state"
        self.log = tmp / "runtime.log"
        self.env = env
        self.tmp = tmp

    def argv(self, *args):
        return [str(RUNTIME), "--root", str(self.root), "--log", str(self.log),
                "--log-format", "json", *map(str, args)]

    def run(self, *args, timeout=300, **kw):
        kw.setdefault("capture_output", True)
        return subprocess.run(self.argv(*args), env=self.env, timeout=timeout, text=True, **kw)

    def bundle(self, name, cfg):
        b = self.tmp / name
        make_rootfs(b / "rootfs")
        (b / "config.json").write_text(json.dumps(cfg))
        return b

    def create(self, cid, bundle, stdin_data=""):
        """create with stdio on files (the keeper keeps them); returns (pid, out, err) paths."""
        out, err, inp = (self.tmp / f"{cid}.{s}" for s in ("out", "err", "in"))
        inp.write_text(stdin_data)
        with open(inp) as i, open(out, "w") as o, open(err, "w") as e:
            r = subprocess.run(self.argv("create", "--bundle", bundle, "--pid-file",
                                         self.tmp / f"{cid}.pid", cid),
                               stdin=i, stdout=o, stderr=e, env=self.env, timeout=300)
        assert r.returncode == 0, err.read_text()
        return int((self.tmp / f"{cid}.pid").read_text()), out, err

    def state(self, cid):
        r = self.run("state", cid)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def log_lines(self):
        if not self.log.exists():
            return []
        return [json.loads(l) for l in self.log.read_text().splitlines() if l.strip()]


@pytest.fixture
def runtime(tmp_path, box_env):
    if not RUNTIME.exists():
        pytest.fail(f"{RUNTIME} is missing: build first")
    rt = Runtime(tmp_path, box_env)
    yield rt
    for d in rt.root.iterdir() if rt.root.exists() else []:  # leave no VM behind
        rt.run("delete", "--force", d.name, timeout=60)


def wait_status(pid, timeout=300):
    """Wait for a keeper (our child by subreaping) and return its exit code."""
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        p, st = os.waitpid(pid, os.WNOHANG)
        if p == pid:
            return os.waitstatus_to_exitcode(st)
        time.sleep(0.1)
    raise TimeoutError(f"keeper {pid} still running")


def rootfs_layer(root):
    layer = Layer()
    for dirpath, dirs, files in sorted(os.walk(root)):
        for name in sorted(dirs) + sorted(files):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                layer.symlink(rel, os.readlink(p))
            elif os.path.isdir(p):
                layer.dir(rel)
            else:
                with open(p, "rb") as f:
                    layer.file(rel, f.read(), os.stat(p).st_mode & 0o7777)
    return layer.raw()


@pytest.fixture(scope="session")
def image(tmp_path_factory):
    """The busybox rootfs as a one-layer image on a registry at 127.0.0.1."""
    w = tmp_path_factory.mktemp("podman-image")
    write_layout(w / "layout", [(rootfs_layer(make_rootfs(w / "rootfs")), "gzip")],
                 {"Env": ["PATH=/bin"], "Cmd": ["sh"]})
    reg = Registry(w / "registry")
    try:
        reg.push(w / "layout", "oci/busybox:1")
        yield f"{reg.host}/oci/busybox:1"
    finally:
        reg.stop()


def qemus(home):
    """The pids of the QEMUs of boxes under home (their working directory is the box's)."""
    want = str(pathlib.Path(home) / "boxes") + "/"
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if (open(f"/proc/{pid}/comm").read().startswith("qemu-system")
                    and os.readlink(f"/proc/{pid}/cwd").startswith(want)
                    and open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1][1] != "Z"):
                pids.append(int(pid))
        except (OSError, IndexError):
            continue
    return pids
