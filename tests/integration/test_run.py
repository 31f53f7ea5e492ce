"""test_run.py — the walking skeleton end to end: `boxlite run` boots a real micro-VM from the
built-in image, runs a command through the real agent and reports its output and status."""
import hashlib
import json
import os
import signal
import subprocess
import threading
import time

import pytest


def run_ok(cli, *args, **kw):
    r = cli.run(*args, **kw)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def test_stdout_and_stderr_are_separate(cli):
    r = run_ok(cli, "run", "--rm", "--", "sh", "-c", "echo out; echo err >&2; echo out2")
    assert r.stdout == b"out\nout2\n"
    assert r.stderr == b"err\n"


@pytest.mark.parametrize("code", [0, 1, 42])
def test_exit_codes(cli, code):
    r = cli.run("run", "--rm", "--", "sh", "-c", f"exit {code}")
    assert r.returncode == code, r.stderr


def test_killed_by_sigkill_is_137(cli):
    r = cli.run("run", "--rm", "--", "sh", "-c", "kill -9 $$")
    assert r.returncode == 137, r.stderr


def test_missing_command_is_127_with_message(cli):
    r = cli.run("run", "--rm", "--", "no-such-command-xyz", "arg")
    assert r.returncode == 127
    assert b"no-such-command-xyz" in r.stderr
    assert b"No such file or directory" in r.stderr or b"not found" in r.stderr


def test_argv_arrives_byte_exact(cli):
    args = ["two words", "q'uo\"te", "ünïcødé ✓", "", "  lead", "tab\there", "$HOME", "*"]
    script = 'for a in "$@"; do printf "<%s>\\n" "$a"; done'
    r = run_ok(cli, "run", "--rm", "--", "sh", "-c", script, "sh", *args)
    want = "".join(f"<{a}>\n" for a in args).encode()
    assert r.stdout == want


def test_env_and_cwd_are_honoured(cli):
    r = run_ok(cli, "run", "--rm", "-e", "FOO=bar", "-e", "SPACED=a b=c", "-w", "/tmp",
               "--", "sh", "-c", 'echo "$FOO|$SPACED|$(pwd)|$PATH"')
    foo, spaced, cwd, path = r.stdout.decode().rstrip("\n").split("|")
    assert (foo, spaced, cwd) == ("bar", "a b=c", "/tmp")
    assert "/bin" in path


def test_missing_cwd_fails_clearly(cli):
    r = cli.run("run", "--rm", "-w", "/does/not/exist", "--", "true")
    assert r.returncode != 0
    assert b"/does/not/exist" in r.stderr


def test_output_is_streamed_not_buffered(cli):
    p = cli.popen("run", "--rm", "--", "sh", "-c", "echo first; sleep 4; echo second",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = p.stdout.readline()
        t_first = time.monotonic()
        rest = p.stdout.read()
        t_end = time.monotonic()
        assert p.wait(timeout=60) == 0
    finally:
        p.kill()
    assert first == b"first\n" and rest == b"second\n"
    assert t_end - t_first > 3, "the first line only arrived when the command ended"


def vm_hwm_kib(pid):
    """The process's own peak RSS (VmHWM), or 0 once it has exited. wait4's ru_maxrss would
    also count the helpers it ran and reaped (qemu-img, mkfs): not the CLI's memory."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def read_stalled(p, stall=10):
    """Read p's stdout to the end, stopping for `stall` seconds after the first chunk (the
    box must wait, not our memory grow); reap p. Returns (bytes, sha256, status, peak RSS in
    KiB of the CLI process itself, sampled from VmHWM every 4 MiB and at the end)."""
    digest = hashlib.sha256()
    got = peak = 0
    chunk = p.stdout.read(1 << 16)
    time.sleep(stall)
    peak = max(peak, vm_hwm_kib(p.pid))
    while chunk:
        digest.update(chunk)
        got += len(chunk)
        if got % (4 << 20) == 0:
            peak = max(peak, vm_hwm_kib(p.pid))
        chunk = p.stdout.read(1 << 16)
    peak = max(peak, vm_hwm_kib(p.pid))
    p.wait()
    return got, digest.hexdigest(), p.returncode, peak


def test_50mb_of_stdout_intact_with_bounded_memory(cli):
    size = 50 * 1024 * 1024
    # busybox yes + head: deterministic bytes we can regenerate here.
    p = cli.popen("run", "--rm", "--", "sh", "-c", f"yes 0123456789abcdefghijklmnopqrstu | head -c {size}",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        got, digest, status, peak = read_stalled(p)
    finally:
        p.kill()
    assert status == 0, p.stderr.read()
    line = b"0123456789abcdefghijklmnopqrstu\n"
    want = (line * (size // len(line) + 1))[:size]
    assert got == size
    assert digest == hashlib.sha256(want).hexdigest()
    # The CLI process (not QEMU) holds at most one credit window per stream plus buffers.
    assert 0 < peak < 48 * 1024, f"boxlite's peak RSS was {peak} KiB"


def box_running(cli, name):
    r = cli.run("inspect", name)
    return r.returncode == 0 and json.loads(r.stdout)[0]["state"]["status"] == "running"


def test_two_boxes_run_at_once_and_do_not_see_each_other(cli):
    def script(me, other):
        return (f"echo {me} > /root/mark-{me}; while ! test -e /root/go; do sleep 0.2; done; "
                f"cat /root/mark-{me}; test -e /root/mark-{other} && echo LEAK; hostname")

    results = {}

    def go(me, other):
        results[me] = cli.run("run", "--rm", "--name", f"box-{me}", "--", "sh", "-c",
                              script(me, other), timeout=300)

    threads = [threading.Thread(target=go, args=("a", "b")),
               threading.Thread(target=go, args=("b", "a"))]
    for t in threads:
        t.start()
    try:
        # both boxes wait for /root/go: they finish only once both ran at the same time
        deadline = time.monotonic() + 240
        while not (box_running(cli, "box-a") and box_running(cli, "box-b")):
            assert time.monotonic() < deadline, "the two boxes never ran at once"
            time.sleep(0.5)
        for me in ("a", "b"):
            run_ok(cli, "exec", f"box-{me}", "--", "touch", "/root/go")
    finally:
        for t in threads:
            t.join(timeout=300)
    for me in ("a", "b"):
        r = results[me]
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().split() == [me, f"box-{me}"]


def test_box_disk_is_qcow2_layer_over_shared_ext4(cli, home):
    r = run_ok(cli, "run", "--name", "keep-me", "--", "sh", "-c",
               "grep ' / ' /proc/mounts; echo persisted > /root/f")
    try:
        assert r.stdout.split()[:3] == [b"/dev/vda", b"/", b"ext4"]
        box_id = json.loads(run_ok(cli, "inspect", "keep-me").stdout)[0]["id"]
        disk = next((home / "boxes").glob(f"{box_id}*/disk.qcow2"))
        info = subprocess.run(["qemu-img", "info", "--output=json", str(disk)],
                              capture_output=True, check=True, text=True).stdout
        assert '"format": "qcow2"' in info
        assert str(home / "images" / "rootfs") in info and ".ext4" in info
    finally:
        run_ok(cli, "rm", "-f", "keep-me")


# The command notes the SIGINT it gets, then dies of it: a box whose CLI merely went away
# (its exec killed on disconnect) leaves no note.
CTRL_C = ("trap 'echo INT > {mark}; kill $c; trap - INT; kill -INT $$' INT; "
          "sleep 61 & c=$!; echo ready; wait $c")


def test_ctrl_c_is_forwarded_and_gives_130(cli):
    # -d keeps the box running after the CLI exits, to look inside
    p = cli.popen("run", "-d", "--name", "ctrl-c-box", "--", "sh", "-c",
                  CTRL_C.format(mark="/root/got-int"), stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 130
        r = run_ok(cli, "exec", "ctrl-c-box", "--", "sh", "-c", "cat /root/got-int; ps -o args")
        assert r.stdout.startswith(b"INT\n"), "the command never got SIGINT"
        assert b"sleep 61" not in r.stdout, r.stdout
    finally:
        p.kill()
        cli.run("rm", "-f", "ctrl-c-box")


def test_tty_with_t(cli):
    r = run_ok(cli, "run", "--rm", "-t", "--", "sh", "-c", "tty; stty size; echo err >&2")
    lines = r.stdout.decode().replace("\r", "").split("\n")
    assert lines[0].startswith("/dev/pts/"), r.stdout
    assert lines[1].split()[0].isdigit(), r.stdout
    assert "err" in lines[2:], r.stdout  # one terminal: stderr arrives on it too


def test_stdin_is_forwarded_with_i(cli):
    data = os.urandom(1 << 20)
    r = run_ok(cli, "run", "--rm", "-i", "--", "sha256sum", input=data)
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("args,needle", [
    (["run", "--rm", "--memory", "1", "--", "true"], b"memory"),
    (["run", "--rm", "--name", "bad/name", "--", "true"], b"invalid box name"),
    (["run", "--rm", "no-such-image:1", "--", "true"], b"no-such-image"),
])
def test_bad_options_fail_clearly(cli, args, needle):
    r = cli.run(*args)
    assert r.returncode == 125
    assert needle in r.stderr


def test_bad_accel_setting_is_refused(cli):
    r = cli.run("run", "--rm", "--", "true", env={"BOXLITE_ACCEL": "warp"})
    assert r.returncode == 125 and b"BOXLITE_ACCEL" in r.stderr


def accel_of_a_box(cli, accel):
    """Start a box with BOXLITE_ACCEL=accel; the -accel its QEMU got and the CLI's stderr."""
    name = f"accel-{accel}"
    try:
        r = cli.run("run", "-d", "--name", name, "--", "true", env={"BOXLITE_ACCEL": accel})
        assert r.returncode == 0, r.stderr
        pid = json.loads(run_ok(cli, "inspect", name).stdout)[0]["state"]["qemu_pid"]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        return argv[argv.index(b"-accel") + 1].decode().split(",")[0], r.stderr.decode()  # tcg,tb-size=
    finally:
        cli.run("rm", "-f", name)


def test_accel_tcg_forced(cli):
    assert accel_of_a_box(cli, "tcg") == ("tcg", "")


def test_accel_kvm_forced(cli):
    from boxlite_paths import kvm_unusable_reason
    why = kvm_unusable_reason()
    if why is not None:
        pytest.skip(f"KVM is unusable on this machine: {why}")
    assert accel_of_a_box(cli, "kvm") == ("kvm", "")


def test_accel_auto_picks_kvm_or_falls_back_with_one_notice(cli):
    from boxlite_paths import kvm_unusable_reason
    accel, err = accel_of_a_box(cli, "auto")
    if kvm_unusable_reason() is None:
        assert (accel, err) == ("kvm", "")
    else:
        assert accel == "tcg"
        lines = err.splitlines()
        assert len(lines) == 1 and "TCG" in lines[0], err


def test_no_command_runs_the_image_default_command(cli):
    # the built-in image's Cmd is ["sh"]: it reads its script from stdin
    r = run_ok(cli, "run", "--rm", "-i", input=b"echo from default cmd; exit 0\n")
    assert r.stdout == b"from default cmd\n"
