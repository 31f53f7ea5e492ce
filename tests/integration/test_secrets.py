"""test_secrets.py — secrets that never enter the box (docs/security.md, Secrets), through real
boxes of the Debian + python3 image. The peers are HTTPS servers with a certificate of a CA
this file makes, in the namespaces test_netpolicy.py's `nets` fixture creates (allowed.test is
203.0.113.10, denied.test 203.0.113.20, the box's "host" has servers on its 127.0.0.1 and its
own address). No packet leaves those namespaces; the registry the image comes from is on
127.0.0.1."""
import json
import os
import pathlib
import secrets as pysecrets
import ssl
import subprocess
import sys
import threading
import http.server

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import registry_fixture as rf  # noqa: E402
from boxlite_paths import BOXLITE, BUILD  # noqa: E402
from test_netpolicy import in_netns, nets, ns_cli  # noqa: E402,F401  (nets: a fixture)
from test_network import ok  # noqa: E402

PORT = 8443
VALUE = "s3cr3t-" + pysecrets.token_hex(12)
PH = "<BOXLITE_SECRET:API_KEY>"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA and a certificate for allowed.test and denied.test signed by it."""
    d = tmp_path_factory.mktemp("secrets-pki")

    def run(*a):
        subprocess.run(a, check=True, capture_output=True, cwd=d, timeout=60)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=boxlite test CA", "-keyout", "ca.key", "-out", "ca.crt",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=allowed.test",
        "-keyout", "srv.key", "-out", "srv.csr")
    (d / "ext").write_text("subjectAltName=DNS:allowed.test,DNS:denied.test\n")
    run("openssl", "x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext", "-out", "srv.crt")
    return d


class Seen(http.server.BaseHTTPRequestHandler):
    log = []

    def do_GET(self):
        n = int(self.headers.get("Content-Length") or 0)
        Seen.log.append((*self.server.server_address[:2], self.command, self.path,
                         self.headers.get("Authorization", ""), self.rfile.read(n).decode()))
        body = b"ok\n"  # never echoes what it got: the guest must not learn it that way
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def https(nets, pki):
    """HTTPS (port 8443) and HTTP (8088) servers on allowed.test and denied.test in the
    "internet" netns."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki / "srv.crt", pki / "srv.key")
    servers = []
    for addr, port in (("203.0.113.10", PORT), ("203.0.113.20", PORT), ("203.0.113.10", 8088),
                       ("203.0.113.20", 8088)):
        srv = in_netns(nets["box"].replace("-box-", "-net-"),
                       lambda a=addr, p=port: http.server.ThreadingHTTPServer((a, p), Seen))
        if port == PORT:
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    yield Seen.log
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="module")
def image(box_env, tmp_path_factory):
    """The Debian + python3 image, pulled into the suite's home from a registry on 127.0.0.1."""
    work = tmp_path_factory.mktemp("secrets-img")
    reg = rf.Registry(work / "registry")
    try:
        reg.push(rf.build_debian(work), "library/python:slim", "v2s2")
        ref = f"{reg.host}/library/python:slim"
        ok(subprocess.run([str(BOXLITE), "pull", "-q", "--registry", f"{reg.host},http", ref],
                          env=box_env, capture_output=True, timeout=900))
        return ref
    finally:
        reg.stop()


@pytest.fixture
def env(box_env, pki):
    e = dict(box_env, API_KEY=VALUE, BOXLITE_SECRETS_UPSTREAM_CA=str(pki / "ca.crt"))
    return e


GUEST = r'''
import json, os, socket, sys, urllib.request
out = {"env": os.environ.get("API_KEY")}
key = os.environ["API_KEY"]
for url in sys.argv[1:]:
    got = []
    for data in (None, ('{"key": "%s"}' % key).encode()):
        req = urllib.request.Request("%s/q?key=%s" % (url, key), data=data,
                                     headers={"Authorization": "Bearer " + key})
        try:
            got.append(urllib.request.urlopen(req, timeout=60).read().decode().strip())
        except Exception as e:
            got.append("ERR %r" % (e,))
    out[url] = ",".join(got)
print(json.dumps(out))
'''

CONNECT = r'''
import json, socket, sys
out = {}
for t in sys.argv[1:]:
    try:
        with socket.create_connection(("10.0.2.100", 3128), timeout=30) as c:
            c.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (t, t)).encode())
            out[t] = c.recv(400).decode(errors="replace").split("\r\n")[0]
    except Exception as e:
        out[t] = "ERR %r" % (e,)
print(json.dumps(out))
'''

# What the guest can see of itself after the requests: the value must be nowhere. It comes in
# two halves so that the scan's own command line does not hold it whole.
LEAKS = r'''
import glob, os, sys
value = (sys.argv[1] + sys.argv[2]).encode()
found, keys = [], []
paths = glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline")
for top in ("/etc", "/root", "/tmp", "/app", "/var/log"):
    for d, _, files in os.walk(top):
        paths += [os.path.join(d, f) for f in files]
for p in paths:
    try:
        with open(p, "rb") as f:
            data = f.read(4 << 20)
    except OSError:
        continue
    if value in data:
        found.append(p)
    if b"PRIVATE KEY" in data and not p.startswith("/proc"):
        keys.append(p)
print("found:", found)
print("keys:", keys)
print("ca:", sorted(os.listdir("/etc/boxlite")))
'''


def last_json(r):
    out = r.stdout.decode()
    return json.loads(out.strip().splitlines()[-1]), out + r.stderr.decode()


def box_dir(box_env, env_, nets, name):
    box_id = json.loads(ok(ns_cli(env_, nets, "inspect", name)).stdout)[0]["id"]
    return pathlib.Path(box_env["BOXLITE_HOME"]) / "boxes" / box_id


def test_secret_goes_only_to_its_host_and_never_into_the_box(box_env, env, nets, https, image,
                                                             pki):
    name = f"sec-{os.getpid()}"
    https.clear()
    ok(ns_cli(env, nets, "create", "--name", name, "--secret", "API_KEY@allowed.test", image,
              "--", "sleep", "3600"))
    try:
        ok(ns_cli(env, nets, "start", name))
        # the test servers' CA, as a system CA would be (the image has none): the host that
        # is only tunnelled shows the guest its real certificate
        ok(ns_cli(env, nets, "exec", name, "--", "sh", "-c",
                  'printf "%s\\n" "$1" >> /etc/boxlite/ca-bundle.crt', "sh",
                  (pki / "ca.crt").read_text()))
        urls = ("https://allowed.test:8443", "https://denied.test:8443",
                "http://allowed.test:8088", "http://denied.test:8088")
        got, out = last_json(ns_cli(env, nets, "exec", name, "--", "python3", "-c", GUEST,
                                    *urls))
        out += (box_dir(box_env, env, nets, name) / "shim.log").read_text()
        assert got["env"] == PH, out
        assert all(got[u] == "ok,ok" for u in urls), out
        seen = {(a, port, m): (p, h, b) for a, port, m, p, h, b in https}
        # the allowed host got the value in the header, the request line and a body with a
        # Content-Length, over HTTPS (intercepted) and plain HTTP ...
        for port in (8443, 8088):
            assert seen[("203.0.113.10", port, "GET")] == (f"/q?key={VALUE}", f"Bearer {VALUE}",
                                                           ""), https
            assert seen[("203.0.113.10", port, "POST")] == (
                f"/q?key={VALUE}", f"Bearer {VALUE}", f'{{"key": "{VALUE}"}}'), https
            # ... the other one only the placeholder, as the guest wrote it
            assert seen[("203.0.113.20", port, "GET")] == (f"/q?key={PH}", f"Bearer {PH}",
                                                           ""), https
            assert seen[("203.0.113.20", port, "POST")] == (
                f"/q?key={PH}", f"Bearer {PH}", f'{{"key": "{PH}"}}'), https
        r = ok(ns_cli(env, nets, "exec", name, "--", "python3", "-c", LEAKS, VALUE[:9],
                      VALUE[9:]))
        lines = r.stdout.decode().splitlines()
        assert lines[-3] == "found: []", r.stdout  # no file, environ or cmdline holds it
        assert lines[-2] == "keys: []", r.stdout  # no private key in the guest
        assert lines[-1] == "ca: ['ca-bundle.crt', 'ca.crt']", r.stdout
        d = box_dir(box_env, env, nets, name)
        pem = (d / "secrets-ca.crt").read_text()
        assert pem == open_guest(env, nets, name), r.stdout
        assert oct((d / "secrets-ca.key").stat().st_mode & 0o777) == "0o600"
        assert oct((d / "secrets").stat().st_mode & 0o777) == "0o600"
        ok(ns_cli(env, nets, "exec", name, "--", "sync"))
        ok(ns_cli(env, nets, "stop", name))
        # nor did the guest's disk get it, nor the box's logs
        for f in d.iterdir():
            if f.is_file() and f.name not in ("secrets",):
                assert VALUE.encode() not in f.read_bytes(), f
        # a clone keeps the secrets (with a CA of its own)
        https.clear()
        ok(ns_cli(env, nets, "clone", name, name + "-c"))
        ok(ns_cli(env, nets, "start", name + "-c"))
        got, out = last_json(ns_cli(env, nets, "exec", name + "-c", "--", "python3", "-c", GUEST,
                                    "https://allowed.test:8443"))
        assert got["https://allowed.test:8443"] == "ok,ok", out
        assert [(p, h) for _, _, _, p, h, _ in https] == [(f"/q?key={VALUE}", f"Bearer {VALUE}")] * 2
        assert (box_dir(box_env, env, nets, name + "-c") / "secrets-ca.crt").read_text() != pem
    finally:
        ns_cli(env, nets, "rm", "-f", name + "-c")
        ns_cli(env, nets, "rm", "-f", name)


def open_guest(env, nets, name):
    return ok(ns_cli(env, nets, "exec", name, "--", "cat", "/etc/boxlite/ca.crt")).stdout.decode()


def test_proxy_keeps_the_network_policy(env, nets, https, image):
    """Through the proxy as directly: the host's loopback and own address, private addresses,
    and (with allow_net) hosts the allowlist does not name are refused."""
    lo, me = nets["lo_port"], nets["self_port"]
    r = ns_cli(env, nets, "run", "--rm", "--secret", "API_KEY@allowed.test",
               "--allow-net", "allowed.test:8443", image, "--", "python3", "-c", CONNECT,
               f"127.0.0.1:{lo}", f"198.51.100.1:{me}", "10.99.0.10:8080", "localhost:%d" % lo,
               "denied.test:8443", "203.0.113.20:8443", "allowed.test:8080", "allowed.test:8443")
    got, out = last_json(r)
    for t in (f"127.0.0.1:{lo}", f"198.51.100.1:{me}", "10.99.0.10:8080", f"localhost:{lo}",
              "denied.test:8443", "203.0.113.20:8443", "allowed.test:8080"):
        assert got[t].startswith("HTTP/1.1 403"), (t, out)
        assert "hello" not in got[t], (t, out)
    assert got["allowed.test:8443"].startswith("HTTP/1.1 200"), out


IDLE = r'''
import socket, time
held, closed = [], 0
for i in range(80):  # never send a byte: each holds one proxy connection
    c = socket.create_connection(("10.0.2.100", 3128), timeout=30)
    held.append(c)
time.sleep(3)
for c in held:
    c.settimeout(0.5)
    try:
        closed += c.recv(1) == b""
    except socket.timeout:
        pass
print("closed:", closed)
for c in held:
    c.close()
time.sleep(3)
c = socket.create_connection(("10.0.2.100", 3128), timeout=30)
c.sendall(b"CONNECT allowed.test:8443 HTTP/1.1\r\nHost: x\r\n\r\n")
print("after:", c.recv(400).decode().split("\r\n")[0])
'''


def test_proxy_bounds_idle_connections(env, nets, https, image):
    """Peers that never send hold at most 64 connections; the rest are closed at once, and
    the proxy serves again once they are gone."""
    r = ns_cli(env, nets, "run", "--rm", "--secret", "API_KEY@allowed.test", image, "--",
               "python3", "-c", IDLE)
    out = r.stdout.decode() + r.stderr.decode()
    assert "closed: 16" in out, out
    assert "after: HTTP/1.1 200" in out, out


def test_a_non_root_image_user_trusts_the_ca(env, nets, https, image):
    """A box whose processes run as uid 1000 (a user override, as an image's USER would):
    trust-ca still runs as root before them, and the unprivileged client verifies the
    intercepted TLS with the box's CA (the value reaches the allowed host)."""
    https.clear()
    guest = GUEST.replace('out = {"env": os.environ.get("API_KEY")}',
                          'out = {"env": os.environ.get("API_KEY"), "uid": os.getuid()}')
    r = ns_cli(env, nets, "run", "--rm", "-u", "1000:1000", "--secret", "API_KEY@allowed.test",
               image, "--", "python3", "-c", guest, "https://allowed.test:8443", timeout=600)
    got, out = last_json(r)
    assert got["uid"] == 1000 and got["env"] == PH, out
    assert got["https://allowed.test:8443"] == "ok,ok", out
    assert [(p, h) for _, _, _, p, h, _ in https] == [(f"/q?key={VALUE}", f"Bearer {VALUE}")] * 2


def test_bad_secrets_are_refused_at_create(cli):
    for spec in ("1BAD=x", "A=", "A=x\x01y", "A=x@ho st"):
        r = cli.run("create", "--name", "sec-bad", "--secret", spec)
        assert r.returncode == 125 and b"secret" in r.stderr, (spec, r.stderr)
    r = cli.run("create", "--name", "sec-bad", "--network", "none", "--secret", "A=x")
    assert r.returncode == 125 and b"secret" in r.stderr, r.stderr


def test_an_exported_box_carries_placeholders_not_the_proxy(cli, tmp_path):
    """An archive is for another machine: the secret's value never goes (it lives only with
    the box's monitor), and neither does the env that points at this box's proxy and CA —
    an imported box has no proxy there. The placeholder stays."""
    import tarfile
    try:
        ok(cli.run("create", "--name", "sec-export", "--secret",
                   f"API_KEY={VALUE}@allowed.test"))
        arch = tmp_path / "sec.boxlite"
        ok(cli.run("export", "sec-export", str(arch)))
        with tarfile.open(arch) as t:
            manifest = json.loads(t.extractfile("manifest.json").read())
        env = manifest["box"]["env"]
        assert f"API_KEY={PH}" in env, env
        assert not [e for e in env if e.split("=", 1)[0] in (
            "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy",
            "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")], env
        assert VALUE.encode() not in arch.read_bytes()
    finally:
        cli.run("rm", "-f", "sec-export")


SDK_PROGRAM = r'''
import asyncio, sys
import boxlite

async def main(home, image, value, guest):
    rt = boxlite.Boxlite(boxlite.Options(home_dir=home))
    secret = boxlite.Secret(name="API_KEY", value=value, hosts=["allowed.test"])
    async with boxlite.SimpleBox(image=image, runtime=rt, secrets=[secret]) as box:
        r = await box.exec("python3", "-c", guest, "https://allowed.test:8443")
        print(r.stdout.strip().splitlines()[-1])

asyncio.run(main(*sys.argv[1:]))
'''


def test_boxlite_style_python_program(box_env, env, nets, https, image):
    """BoxOptions(secrets=[boxlite.Secret(...)]) as a BoxLite program writes it; booted cold
    (no warm template), where the box's monitor makes the guest trust the CA itself."""
    https.clear()
    cmd = ["ip", "netns", "exec", nets["box"], "unshare", "-m", "sh", "-c",
           'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(nets["resolv"]),
           "/usr/bin/python3", "-c", SDK_PROGRAM, box_env["BOXLITE_HOME"], image, VALUE, GUEST]
    r = subprocess.run(cmd, capture_output=True, timeout=600,
                       env=dict(env, PYTHONPATH=str(BUILD / "python"), BOXLITE_TEMPLATES="0"))
    assert r.stdout.strip(), r.stderr.decode()
    got, out = last_json(r)
    assert got["env"] == PH and got["https://allowed.test:8443"] == "ok,ok", out
    assert [(p, h) for _, _, _, p, h, _ in https] == [(f"/q?key={VALUE}", f"Bearer {VALUE}")] * 2, \
        https


def test_inspect_lists_secret_names_and_hosts_never_values(cli, box_env):
    """`boxlite inspect` shows each secret's name and hosts; the value is in no inspect
    output, no file of the home (store, logs) but the box's own secrets file."""
    other = "v2-" + pysecrets.token_hex(12)
    try:
        ok(cli.run("create", "--name", "sec-inspect", "--secret",
                   f"API_KEY={VALUE}@allowed.test,*.example.org:443", "--secret",
                   f"OTHER={other}"))
        r = ok(cli.run("inspect", "sec-inspect"))
        info = json.loads(r.stdout)[0]
        assert info["secrets"] == [{"name": "API_KEY", "hosts": ["allowed.test",
                                                                  "*.example.org:443"]},
                                   {"name": "OTHER", "hosts": []}], r.stdout
        out = r.stdout + r.stderr + ok(cli.run("ls", "-a")).stdout
        assert VALUE.encode() not in out and other.encode() not in out
        home = pathlib.Path(box_env["BOXLITE_HOME"])
        secrets_file = home / "boxes" / info["id"] / "secrets"
        assert VALUE in secrets_file.read_text()
        for f in home.rglob("*"):
            if f.is_file() and not f.is_symlink() and f != secrets_file and \
                    f.stat().st_size < (64 << 20):
                data = f.read_bytes()
                assert VALUE.encode() not in data and other.encode() not in data, f
    finally:
        cli.run("rm", "-f", "sec-inspect")
