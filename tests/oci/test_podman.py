"""test_podman.py — podman 4.3 (Debian) with boxlite-runtime as its OCI runtime: an image
pushed to a registry on 127.0.0.1, run in a micro-VM per container through conmon: output,
exit codes, -i stdin, -t, exec, logs, stop, kill, a bind-mounted volume, a published port (-p) answered from inside the VM
through podman's CNI network namespace (inbound.c). Private --root/--runroot,
vfs storage; the runtime's home goes through --runtime-flag (conmon drops our environment)."""
import json
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from oci_helpers import RUNTIME

pytestmark = pytest.mark.skipif(not shutil.which("podman"), reason="podman not installed "
                                "(scripts/install-deps.sh)")


class Podman:
    def __init__(self, tmp, home):
        self.base = ["podman", "--root", str(tmp / "root"), "--runroot", str(tmp / "run"),
                     "--storage-driver", "vfs", "--runtime", str(RUNTIME),
                     "--runtime-flag", f"boxlite-home={home}", "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file"]

    def __call__(self, *args, input=None, timeout=300):
        return subprocess.run(self.base + list(args), capture_output=True, text=True,
                              input=input, timeout=timeout)


@pytest.fixture(scope="module")
def podman(tmp_path_factory, image, home):
    p = Podman(tmp_path_factory.mktemp("podman"), home)
    r = p("pull", "-q", "--tls-verify=false", image)
    assert r.returncode == 0, r.stderr
    yield p
    p("rm", "-a", "-f", "-t", "0", timeout=120)


def run(podman, image, *args, **kw):
    return podman("run", "--rm", "--network", "none", *args[:-1], image, *args[-1], **kw)


def test_output_and_exit_code(podman, image):
    r = run(podman, image, ["sh", "-c", "echo out $(id -u); echo err >&2; exit 5"])
    assert (r.returncode, r.stdout) == (5, "out 0\n"), r.stderr
    assert "err" in r.stderr
    assert run(podman, image, ["true"]).returncode == 0


def test_stdin(podman, image):
    r = run(podman, image, "-i", ["sh", "-c", "wc -c; echo end"], input="x" * 100000)
    assert (r.returncode, r.stdout) == (0, "100000\nend\n"), r.stderr


def test_tty(podman, image):
    r = run(podman, image, "-t", ["sh", "-c", "test -t 0 && test -t 1 && echo tty; exit 3"])
    assert (r.returncode, r.stdout.strip()) == (3, "tty"), r.stderr


def test_volume(podman, image, tmp_path):
    (tmp_path / "in").write_text("from the host\n")
    r = run(podman, image, "-v", f"{tmp_path}:/data",
            ["sh", "-c", "cat /data/in; echo from the guest > /data/out"])
    assert (r.returncode, r.stdout) == (0, "from the host\n"), r.stderr
    assert (tmp_path / "out").read_text() == "from the guest\n"


def test_exec_stop_kill(podman, image, cli):
    r = podman("run", "-d", "--name", "long", "--network", "none", image, "sh", "-c",
               "echo logged; exec sleep 600")
    assert r.returncode == 0, r.stderr
    for _ in range(50):  # conmon writes the container's stdout to its log
        if "logged" in podman("logs", "long").stdout:
            break
        time.sleep(0.2)
    assert podman("logs", "long").stdout == "logged\n"
    r = podman("exec", "long", "sh", "-c", "echo exec $(pwd); exit 4")
    assert (r.returncode, r.stdout) == (4, "exec /\n"), r.stderr
    r = podman("exec", "-i", "long", "cat", input="through exec\n")
    assert r.stdout == "through exec\n", r.stderr
    boxes = json.loads(cli.run("ls", "--format", "json").stdout)
    assert [b["managed_by"] for b in boxes] == ["podman"], boxes  # marked as podman's
    r = podman("stop", "-t", "5", "long")
    assert r.returncode == 0, r.stderr
    assert podman("inspect", "long", "--format", "{{.State.ExitCode}}").stdout.strip() == "143"
    assert podman("rm", "long").returncode == 0

    r = podman("run", "-d", "--name", "killed", "--network", "none", image, "sleep", "600")
    assert r.returncode == 0, r.stderr
    assert podman("kill", "-s", "KILL", "killed").returncode == 0
    assert podman("wait", "killed").stdout.strip() == "137"
    assert podman("rm", "killed").returncode == 0
    # podman's delete carries no --runtime-flag: the state remembers the home, so every box
    # and imported rootfs made for these containers is gone
    assert cli.run("ls", "-a", "-q").stdout.decode().split() == []
    assert "localhost/oci-" not in cli.run("images").stdout.decode()


def test_ulimits_and_read_only_root(podman, image):
    """podman as root asks for rlimits above the host's (crun fails here with "setrlimit
    RLIMIT_NPROC: Operation not permitted"); ours are set in the guest. --read-only: the
    root is read-only in the guest (podman's /tmp tmpfs mounts are the guest's business and
    not made: /tmp is read-only too)."""
    r = run(podman, image, "--ulimit", "nofile=555:666", "--read-only",
            ["sh", "-c", 'echo "$(ulimit -Sn) $(ulimit -Hn) $(ulimit -Hu)"; '
                         "touch /x 2>/dev/null && echo rw || echo ro"])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["555", "666"], r.stdout
    assert int(lines[0].split()[2]) >= 1024, r.stdout  # podman's nproc default reached the guest
    assert lines[1] == "ro", r.stdout
    r = run(podman, image, ["sh", "-c", "touch /x && echo rw"])
    assert r.stdout == "rw\n", r.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, deadline):
    """The page at url, retried until deadline (the VM boots under TCG); None if never."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.read().decode()
        except OSError:
            time.sleep(1)
    return None


def test_published_port(podman, image):
    """podman's default network (CNI bridge, 10.88.0.0/16): a -p port on the host's 127.0.0.1
    reaches httpd inside the VM; so does the container's own address. A port nobody listens
    on in the guest is accepted and closed at once (end of file, no data). Traffic goes only
    to 127.0.0.1 and the container's address in the namespace podman made."""
    port = free_port()
    r = podman("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:8080", image, "sh", "-c",
               "echo served-from-the-vm > /index.html; exec httpd -f -p 8080 -h /")
    assert r.returncode == 0, r.stderr
    try:
        page = fetch(f"http://127.0.0.1:{port}/", time.monotonic() + 180)
        assert page == "served-from-the-vm\n", podman("logs", "web").stdout
        ip = podman("inspect", "web", "--format", "{{.NetworkSettings.IPAddress}}").stdout.strip()
        assert ip.startswith("10.88."), ip
        assert fetch(f"http://{ip}:8080/", time.monotonic() + 30) == "served-from-the-vm\n"
        with socket.create_connection((ip, 9999), timeout=30) as s:
            s.settimeout(30)
            assert s.recv(10) == b""
    finally:
        assert podman("rm", "-f", "-t", "0", "web").returncode == 0
