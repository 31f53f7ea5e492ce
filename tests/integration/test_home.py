"""test_home.py — the home, temp files, logs and the registry client against an attacker
(issue 11, parts 6, 7 and 11): a home or its files owned by another user or writable by
others is refused; temp files never follow a planted link; guest bytes reach the terminal
escaped; a registry that never answers is given up on in bounded time, and credentials
for one registry host never travel to a token realm on another."""
import base64
import http.server
import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from boxlite_paths import BOXLITE  # noqa: E402


def run(env, home, *args, timeout=120, extra=None):
    e = dict(env)
    e["BOXLITE_HOME"] = str(home)
    e.update(extra or {})
    return subprocess.run([str(BOXLITE), *args], capture_output=True, timeout=timeout, env=e)


# ---- the home ---------------------------------------------------------------------------------

def test_home_writable_by_others_refused(box_env, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(home, 0o777)
    r = run(box_env, home, "images")
    assert r.returncode != 0
    err = r.stderr.decode()
    assert "writable by group or others (mode 0777)" in err, err
    assert not (home / "images").exists(), "nothing made in a refused home"
    os.chmod(home, 0o700)
    assert run(box_env, home, "images").returncode == 0


def test_planted_registries_json_refused(box_env, tmp_path):
    home = tmp_path / "home"
    assert run(box_env, home, "images").returncode == 0
    conf = home / "registries.json"
    conf.write_text(json.dumps({"registries": [{"host": "127.0.0.1:9", "search": True}]}))
    os.chmod(conf, 0o666)
    r = run(box_env, home, "images")
    assert r.returncode != 0 and "registries.json is writable by group or others" in \
        r.stderr.decode(), r.stderr.decode()
    conf.unlink()
    conf.symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_text("{\"registries\": []}")
    r = run(box_env, home, "images")
    assert r.returncode != 0 and "is not a regular file" in r.stderr.decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another uid needs root")
def test_home_owned_by_another_user_refused(box_env, tmp_path):
    home = tmp_path / "home"
    assert run(box_env, home, "images").returncode == 0
    os.chown(home, 4242, 4242)
    r = run(box_env, home, "images")
    err = r.stderr.decode()
    assert r.returncode != 0 and "is owned by uid 4242, not by you (uid 0)" in err, err
    os.chown(home, 0, 0)
    os.chown(home / "boxlite.db", 4242, 4242)
    r = run(box_env, home, "images")
    assert r.returncode != 0 and "boxlite.db is owned by uid 4242" in r.stderr.decode()


@pytest.mark.skipif(os.geteuid() != 0, reason="running as a uid without a passwd entry")
def test_no_shared_tmp_fallback_without_a_home(box_env):
    # uid 54321 has no passwd entry; with HOME and BOXLITE_HOME unset the old code took
    # /tmp/.boxlite, a directory any local user could have made first.
    env = {k: v for k, v in box_env.items() if k != "BOXLITE_HOME"}
    env["HOME"] = ""
    r = subprocess.run(["setpriv", "--reuid", "54321", "--regid", "54321", "--clear-groups",
                        str(BOXLITE), "images"], capture_output=True, timeout=60, env=env)
    assert r.returncode != 0
    assert "no home directory: set BOXLITE_HOME or HOME" in r.stderr.decode(), r.stderr
    assert not pathlib.Path("/tmp/.boxlite").exists()


# ---- temp files -------------------------------------------------------------------------------

def test_planted_symlinks_at_temp_paths_not_followed(box_env, tmp_path):
    """The name the export's temp file had (DEST.tmp), and the image build's, planted as
    links to a victim: the export and an import go through their temp files and the victim
    is intact; the tool-output temp file of qemu-img is no longer a /tmp path at all."""
    victim = tmp_path / "victim"
    victim.write_text("precious")
    home = tmp_path / "home"
    out = tmp_path / "out.boxlite"
    name = f"tmpbox-{os.getpid()}"
    r = run(box_env, home, "create", "--name", name)
    assert r.returncode == 0, r.stderr.decode()
    plant = pathlib.Path(str(out) + ".tmp")
    plant.symlink_to(victim)
    try:
        r = run(box_env, home, "export", name, str(out), timeout=600)
        assert r.returncode == 0, r.stderr.decode()
    finally:
        run(box_env, home, "rm", "-f", name)
    assert victim.read_text() == "precious"
    assert out.is_file() and not out.is_symlink() and plant.is_symlink()
    assert not list(tmp_path.glob("out.boxlite.tmp.*")), "a temp file was left behind"
    before = set(pathlib.Path("/tmp").glob("boxlite-tool-*"))
    r = run(box_env, home, "import-box", "--name", name + "-back", str(out), timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    assert set(pathlib.Path("/tmp").glob("boxlite-tool-*")) == before
    run(box_env, home, "rm", "-f", name + "-back")


# ---- logs and messages ------------------------------------------------------------------------

def test_guest_control_sequences_come_out_escaped(cli):
    name = f"logbox-{os.getpid()}"
    seq = r"printf 'MARK\033]0;pwn\007\033[2J\302\233\377\342\202\254end\n' > /dev/console"
    r = cli.run("run", "--name", name, "--", "sh", "-c", seq, timeout=300)
    try:
        assert r.returncode == 0, r.stderr.decode()
        out = cli.run("logs", "--console", name).stdout
        assert b"MARK" in out, out[-2000:]
        line = out[out.index(b"MARK"):].split(b"\n")[0].rstrip(b"\r")
        assert line == rb"MARK\x1b]0;pwn\x07\x1b[2J\u009b\xff" + "€end".encode(), line
        assert b"\x1b" not in out and b"\x07" not in out and b"\xff" not in out
        info = cli.run("inspect", name).stdout
        assert b"\x1b" not in info
    finally:
        cli.run("rm", "-f", name)


# ---- the registry client ----------------------------------------------------------------------

class Silent:
    """A TCP server on 127.0.0.1 that accepts and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.done = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        self.sock.settimeout(0.2)
        deadline = time.monotonic() + 120
        while not self.done and time.monotonic() < deadline:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                pass

    def close(self):
        self.done = True
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.mark.parametrize("limits,words", [
    ({"BOXLITE_REQUEST_TIMEOUT": "2", "BOXLITE_PULL_TIMEOUT": "60"},
     "2 s per request, BOXLITE_REQUEST_TIMEOUT"),
    ({"BOXLITE_REQUEST_TIMEOUT": "60", "BOXLITE_PULL_TIMEOUT": "3"},
     "the pull took longer than 3 s (BOXLITE_PULL_TIMEOUT)"),
])
def test_never_answering_registry_gives_up_in_time(box_env, tmp_path, limits, words):
    srv = Silent()
    try:
        host = f"127.0.0.1:{srv.port}"
        t0 = time.monotonic()
        r = run(box_env, tmp_path / "home", "--registry", f"{host},http", "pull",
                f"{host}/slow/image:latest", timeout=60, extra=limits)
        took = time.monotonic() - t0
    finally:
        srv.close()
    assert r.returncode != 0
    assert words in r.stderr.decode(), r.stderr.decode()
    assert took < 20, took


class Recorder(http.server.BaseHTTPRequestHandler):
    """Registry (401 with a Bearer challenge naming the realm) and token service in one;
    every request's Authorization header is recorded on the server."""

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.startswith("/token"):
            body = json.dumps({"token": "tok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
        else:
            body = b'{"errors":[{"code":"NAME_UNKNOWN"}]}'
            if self.headers.get("Authorization") == "Bearer tok":
                self.send_response(404)
            else:
                self.send_response(401)
                self.send_header("WWW-Authenticate",
                                 f'Bearer realm="{self.server.realm}",service="reg"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(addr):
    srv = http.server.ThreadingHTTPServer((addr, 0), Recorder)
    srv.seen = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.mark.parametrize("realm_on_other_host", [True, False])
def test_basic_credentials_stay_with_their_registry(box_env, tmp_path, realm_on_other_host):
    reg = serve("127.0.0.1")
    tok = serve("127.0.0.2") if realm_on_other_host else reg
    reg.realm = f"http://{tok.server_address[0]}:{tok.server_address[1]}/token"
    host = f"127.0.0.1:{reg.server_address[1]}"
    try:
        r = run(box_env, tmp_path / "home", "--registry",
                f"{host},http,user=alice,password=secret", "pull", f"{host}/some/image:latest",
                timeout=60)
    finally:
        reg.shutdown()
        if tok is not reg:
            tok.shutdown()
    assert r.returncode != 0  # the repository does not exist
    token_calls = [a for p, a in tok.seen if p.startswith("/token")]
    assert token_calls, (reg.seen, tok.seen)
    basic = "Basic " + base64.b64encode(b"alice:secret").decode()
    if realm_on_other_host:
        assert all(a is None for a in token_calls), token_calls
    else:
        assert token_calls == [basic], token_calls  # the same host: the control case


def test_console_flood_stays_under_the_cap(cli):
    """The guest writes 8 MB to its console with the cap at 256 KiB: console.log and the one
    older file stay under it, the newest lines are there, and the box keeps answering."""
    name = f"flood-{os.getpid()}"
    cap = 256 * 1024
    flood = ("head -c 8000000 /dev/zero | tr '\\0' x | fold -w 100 > /dev/console; "
             "echo FLOOD-END > /dev/console")
    r = cli.run("create", "--name", name, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    try:
        r = cli.run("start", name, timeout=300, env={"BOXLITE_MAX_CONSOLE": str(cap)})
        assert r.returncode == 0, r.stderr.decode()
        t0 = time.monotonic()
        r = cli.run("exec", name, "--", "sh", "-c", flood, timeout=600)
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr.decode()
        info = json.loads(cli.run("inspect", name).stdout)[0]
        d = pathlib.Path(cli.env["BOXLITE_HOME"]) / "boxes" / info["id"]
        deadline = time.monotonic() + 30
        while b"FLOOD-END" not in (d / "console.log").read_bytes() and time.monotonic() < deadline:
            time.sleep(0.5)
        sizes = [(d / f).stat().st_size for f in ["console.log", "console.log.1"]]
        assert max(sizes) <= cap, sizes
        assert b"FLOOD-END" in cli.run("logs", "--console", name).stdout
        assert cli.run("exec", name, "--", "true", timeout=120).returncode == 0
        print(f"8 MB through the console in {took:.1f}s (TCG)")
    finally:
        cli.run("rm", "-f", name)


def test_info_says_versions_paths_accel_and_what_the_store_takes(box_env, tmp_path):
    """`boxlite info`: where every file is, the accelerator a box gets now and whether that is
    a hardware boundary, and what the store holds (no VM)."""
    home = tmp_path / "home"
    env = dict(box_env, BOXLITE_ACCEL="tcg")
    r = run(env, home, "info", "--format", "json")
    assert r.returncode == 0, r.stderr
    i = json.loads(r.stdout)
    assert i["home"] == str(home) and i["version"] and i["kernel_version"]
    assert pathlib.Path(i["guest_dir"], "vmlinux").exists()
    assert os.access(i["qemu"], os.X_OK) and i["qemu_version"][0].isdigit()
    assert os.access(i["shim"], os.X_OK)
    assert i["accel"] == "tcg" and i["hardware_isolated"] is False and i["accel_reason"]
    assert (i["boxes"], i["images"], i["templates"]) == (0, 0, 0)
    # an image and a box show up, with what they take on disk
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hello").write_bytes(os.urandom(1 << 20))
    assert run(env, home, "import", str(rootfs), "localhost/info:1").returncode == 0
    assert run(env, home, "create", "localhost/info:1").returncode == 0
    i = json.loads(run(env, home, "info", "--format", "json").stdout)
    assert (i["boxes"], i["images"]) == (1, 1), i
    assert i["images_bytes"] >= 1 << 20 and i["boxes_bytes"] > 0, i
    # a QEMU that is not there is said, not hidden
    r = run(dict(env, BOXLITE_QEMU=str(tmp_path / "no-qemu")), home, "info")
    assert r.returncode == 0 and b"qemu:        (not found)" in r.stdout, r.stdout
    assert b"tcg (emulated: not a hardware boundary)" in r.stdout
