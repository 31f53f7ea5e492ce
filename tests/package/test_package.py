"""test_package.py — the self-contained package (issue 14, docs/packaging.md):

- the fresh-machine test: a bare Debian bookworm root (minbase + python3 + python3-pip only;
  tests/package/mkroot.sh, cached) entered with unshare + pivot_root, the wheel pip-installed
  offline, the seed's lines with the default image and with an image pulled by its short
  name from a registry on 127.0.0.1 (a real docker-registry, configured as a search
  registry), the `boxlite` CLI's `run`, then `pip uninstall` leaves nothing but
  $BOXLITE_HOME;
- a wheel whose QEMU is missing or corrupt fails at the first start naming the file;
- the first start of an installed wheel (the default image inflated, the warm template built)
  says so in one line each on a terminal, and nothing when stderr is not one;
- the C install (meson install into a scratch prefix) with the build tree moved away:
  examples/hello.c built with `pkg-config --cflags --libs boxlite` runs a box.

The wheel is $BOXLITE_WHEEL, else the newest dist/boxlite-*.whl (`make wheel`; `make test`
builds it first). Needs root (chroot, mounts)."""
import os
import pathlib
import select
import shutil
import subprocess
import sys

import pytest

import registry_fixture as rf
from boxlite_paths import BUILD, ROOT, suite_accel

HERE = pathlib.Path(__file__).resolve().parent
PY = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chroot and mounts")


@pytest.fixture(scope="module")
def wheel():
    env = os.environ.get("BOXLITE_WHEEL")
    if env:
        return pathlib.Path(env)
    found = sorted((ROOT / "dist").glob("boxlite-*.whl"), key=lambda p: p.stat().st_mtime)
    if not found:
        pytest.fail("no wheel: run `make wheel` first (or set BOXLITE_WHEEL)")
    return found[-1]


@pytest.fixture(scope="module")
def bare_root(tmp_path_factory):
    tar = subprocess.run([str(HERE / "mkroot.sh")], check=True, capture_output=True, text=True,
                         timeout=1200).stdout.strip().splitlines()[-1]
    root = tmp_path_factory.mktemp("bare-root")
    subprocess.run(["tar", "-xf", tar, "-C", str(root)], check=True, timeout=300)
    yield root
    shutil.rmtree(root, ignore_errors=True)  # ~1 GiB with the package and a home in it


def in_root(root, wheel, script, timeout=600, env=None):
    """Run `sh -c script` inside root as a machine would: a private mount namespace whose root
    *is* root (pivot_root, not chroot: the box jail makes user namespaces, which the kernel
    refuses in a chroot), with /proc, /sys, /dev and the wheel's directory (at /wheel)
    mounted; every mount goes when it ends."""
    setup = (f"mount --bind {root} {root} && mount -t proc proc {root}/proc && "
             f"mount --rbind /dev {root}/dev && mount --rbind /sys {root}/sys && "
             f"mkdir -p {root}/wheel {root}/.oldroot && "
             f"mount --bind {wheel.parent} {root}/wheel && cd {root} && "
             f"pivot_root . .oldroot && exec /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin "
             f"HOME=/root BOXLITE_HOME=/root/bl-home BOXLITE_ACCEL={suite_accel()} "
             + " ".join(f"{k}={v}" for k, v in (env or {}).items())
             + ' /bin/sh -ec "umount -l /.oldroot && rmdir /.oldroot && cd / && $0"')
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "--fork", "sh",
                           "-c", setup, script], capture_output=True, text=True,
                          timeout=timeout)


LIST_FILES = ("find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /wheel -o -path /tmp "
              "-o -path /root/bl-home \\) -prune -o -print | sort")

SEED = """
import boxlite
with boxlite.SyncSimpleBox("default") as box:
    r = box.exec("sh", "-c", "echo seed-says-hi; uname -s")
    print(r.stdout, end="")
"""

# the seed's lines with an image pulled by its short name from the search registry {host}
SEED_PULL = """
import boxlite
boxlite.Boxlite.init_default(boxlite.Options(image_registries=[
    boxlite.ImageRegistry("{host}", transport="http", search=True)]))
with boxlite.SyncSimpleBox("seed/busybox:1") as box:
    r = box.exec("sh", "-c", "echo pulled-says-hi; cat /etc/os-release 2>/dev/null | head -1")
    print(r.stdout, end="")
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    work = tmp_path_factory.mktemp("pkg-registry")
    layers, _ = rf.busybox_layers()
    layout = work / "image"
    # a shell as the main process, as python:slim's python3: it waits on its stdin, the box
    # stays up (the test image's own entrypoint, echo, would end it at once)
    rf.write_layout(layout, [(l.raw(), "gzip") for l in layers],
                    dict({k: v for k, v in rf.BUSYBOX_CONFIG.items() if k != "Entrypoint"},
                         Cmd=["/bin/sh"]))
    reg = rf.Registry(work / "registry")
    reg.push(layout, "seed/busybox:1")
    yield reg
    reg.stop()


def test_fresh_machine(bare_root, wheel, registry):
    """pip install the wheel on a bare Debian, run a box from Python and from the CLI,
    uninstall, and find the machine as it was but for $BOXLITE_HOME."""
    for tool in ("qemu-system-x86_64", "qemu-img", "cc", "busybox"):
        assert not any((bare_root / d / tool).exists() for d in ("usr/bin", "bin", "usr/local/bin")), tool
    r = in_root(bare_root, wheel, LIST_FILES)
    assert r.returncode == 0, r.stderr
    before = r.stdout
    r = in_root(bare_root, wheel, f"python3 -m pip install -q --no-index --no-cache-dir "
                f"--break-system-packages /wheel/{wheel.name}", timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    r = in_root(bare_root, wheel, f"python3 -c '{SEED}'")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["seed-says-hi", "Linux"], r.stdout + r.stderr
    r = in_root(bare_root, wheel, "python3 -c '" + SEED_PULL.replace("{host}", registry.host) + "'")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == "pulled-says-hi", r.stdout + r.stderr
    r = in_root(bare_root, wheel, "boxlite run --rm -- echo cli-says-hi")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "cli-says-hi", r.stdout + r.stderr
    r = in_root(bare_root, wheel, "python3 -m pip uninstall -q -y --break-system-packages "
                "boxlite && " + LIST_FILES)
    assert r.returncode == 0, r.stdout + r.stderr
    left = sorted(set(r.stdout.splitlines()) - set(before.splitlines()))
    assert left == [], f"left behind by install + uninstall: {left[:20]}"
    assert (bare_root / "root/bl-home").is_dir()


@pytest.fixture()
def installed(wheel, tmp_path):
    """The wheel installed with pip into a scratch directory of this machine."""
    target = tmp_path / "site"
    subprocess.run([PY, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, timeout=300)
    yield target
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.parametrize("damage", ["missing", "corrupt", "not-executable"])
def test_broken_qemu_is_named(installed, tmp_path, damage):
    """The package never falls back to the machine's QEMU (this machine has one in PATH):
    a missing or corrupt bundled QEMU fails the first start, quickly, naming the file."""
    qemu = installed / "boxlite" / "libexec" / "qemu-system-x86_64"
    assert qemu.exists()
    if damage == "missing":
        qemu.unlink()
    elif damage == "corrupt":
        qemu.write_bytes(b"#!/bin/sh\necho not qemu\n")
    else:
        qemu.chmod(0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXLITE_")}
    env.update(PYTHONPATH=str(installed), BOXLITE_HOME=str(tmp_path / "home"),
               BOXLITE_ACCEL=suite_accel())
    code = ("import boxlite\n"
            "try:\n"
            "    with boxlite.SyncSimpleBox('default') as box: box.exec('true')\n"
            "except boxlite.BoxliteError as e:\n"
            "    print('ERROR:', e)\n")
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ERROR:") and str(qemu) in r.stdout, r.stdout + r.stderr


FIRST_RUN_LINES = ["boxlite: preparing the built-in image (first use)... done",
                   "boxlite: building the warm template (first start of this shape)... done"]


def run_with_stderr_on_pty(argv, env, timeout):
    """Run argv with stderr on a new pseudo-terminal (stdout a pipe): (rc, stdout, stderr)."""
    master, slave = os.openpty()
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, env=env, text=True)
        os.close(slave)
        slave = -1
        out, err = p.communicate(timeout=timeout)[0], b""
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the last writer has gone
                break
            if not chunk:
                break
            err += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return p.returncode, out, err.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.parametrize("stderr_kind", ["pipe", "terminal"])
def test_first_run_progress(installed, tmp_path, stderr_kind):
    """The first SimpleBox of a fresh install inflates the default image and builds the warm
    template: one line each on a terminal, nothing on stderr otherwise (a pipe, a log file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOXLITE_")}
    env.update(PYTHONPATH=str(installed), BOXLITE_HOME=str(tmp_path / "home"),
               BOXLITE_ACCEL=suite_accel())
    code = ("import boxlite\n"
            "with boxlite.SyncSimpleBox('default') as box:\n"
            "    print(box.exec('echo', 'first-run').stdout, end='')\n")
    if stderr_kind == "pipe":
        r = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env,
                           timeout=600)
        rc, out, err = r.returncode, r.stdout, r.stderr
    else:
        rc, out, err = run_with_stderr_on_pty([PY, "-c", code], env, 600)
    assert rc == 0 and out == "first-run\n", out + err
    if stderr_kind == "pipe":
        assert err == "", err
    else:
        assert err.splitlines() == FIRST_RUN_LINES, err
    assert any((tmp_path / "home" / "templates").iterdir())  # a template was built


def test_c_install_without_build_tree(tmp_path):
    """meson install into a scratch directory, the build tree moved away, examples/hello
    built with pkg-config against the installed library: it runs a box."""
    dest = tmp_path / "inst"
    subprocess.run(["meson", "install", "-C", str(BUILD), "--quiet", "--no-rebuild",
                    "--destdir", str(dest)], check=True, capture_output=True, timeout=300)
    pcs = list(dest.rglob("boxlite.pc"))
    assert len(pcs) == 1, pcs
    prefix = subprocess.run(["pkg-config", "--variable=prefix", str(pcs[0])], check=True,
                            capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, PKG_CONFIG_PATH=str(pcs[0].parent))
    flags = subprocess.run(["pkg-config", f"--define-variable=prefix={dest}{prefix}",
                            "--cflags", "--libs", "boxlite"],
                           check=True, capture_output=True, text=True, env=env).stdout.split()
    libdir = [f[2:] for f in flags if f.startswith("-L")][0]
    hello = tmp_path / "hello"
    subprocess.run(["cc", str(ROOT / "examples" / "hello.c"), "-o", str(hello), *flags,
                    f"-Wl,-rpath,{libdir}"], check=True, timeout=120)
    away = BUILD.with_name(BUILD.name + ".moved-away")
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("BOXLITE_")}
    run_env.update(BOXLITE_HOME=str(tmp_path / "home"), BOXLITE_ACCEL=suite_accel())
    BUILD.rename(away)
    try:
        r = subprocess.run([str(hello)], capture_output=True, text=True, env=run_env,
                           timeout=300)
    finally:
        away.rename(BUILD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "hello from a box" in r.stdout, r.stdout + r.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
