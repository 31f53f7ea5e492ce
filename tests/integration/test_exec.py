"""test_exec.py — `boxlite exec` against one real box shared by the module: streams and flow
control (1 GiB to a slow reader, 100 MB of stdin), tty and an interactive session in tmux,
timeouts, 50 concurrent execs, users and groups, detached execs and exit statuses."""
import hashlib
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

BOX = "exec-test-box"


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


@pytest.fixture(scope="module")
def box(cli):
    cli.run("rm", "-f", BOX)
    ok(cli.run("create", "--name", BOX, "-d"))
    ok(cli.run("start", BOX, timeout=300))
    yield BOX
    cli.run("rm", "-f", BOX, timeout=120)


RSS_BOUND_MIB = 64


def vm_hwm_kib(pid):
    """The process's own peak RSS (VmHWM), or 0 once it has exited."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def test_1gib_stdout_to_a_slow_consumer_keeps_host_memory_bounded(cli, box):
    """The CLI's own peak RSS (VmHWM, sampled while it runs) stays under RSS_BOUND_MIB
    while 1 GiB flows, the reader stopping for 10 s after the first chunk."""
    total = 1 << 30
    p = cli.popen("exec", box, "--", "head", "-c", str(total), "/dev/zero",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = peak = 0
    try:
        chunk = p.stdout.read(1 << 16)
        time.sleep(10)  # the guest must wait, not our memory grow
        peak = max(peak, vm_hwm_kib(p.pid))
        while chunk:
            got += len(chunk)
            if got % (16 << 20) == 0:
                peak = max(peak, vm_hwm_kib(p.pid))
            chunk = p.stdout.read(1 << 16)
        peak = max(peak, vm_hwm_kib(p.pid))
        p.wait()
    finally:
        p.kill()
    assert p.returncode == 0
    assert got == total
    # the CLI's own high-water mark (VmHWM), not wait4's, which counts reaped helpers too
    assert 0 < peak < RSS_BOUND_MIB * 1024, f"CLI peak RSS {peak} KiB"


def test_100mb_stdin_into_sha256sum(cli, box):
    data = os.urandom(1 << 20) * 100
    r = ok(cli.run("exec", "-i", box, "--", "sha256sum", input=data, timeout=600))
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()


def test_tty_gives_a_pts(cli, box):
    r = ok(cli.run("exec", "-t", box, "--", "tty"))
    assert r.stdout.startswith(b"/dev/pts/"), r.stdout


def tmux(*args, check=True):
    return subprocess.run(["tmux", "-L", "boxlite-test", *args], capture_output=True,
                          text=True, check=check, timeout=30)


def wait_pane(pattern, timeout=60):
    end = time.monotonic() + timeout
    text = ""
    while time.monotonic() < end:
        text = tmux("capture-pane", "-p", "-t", "t").stdout
        if pattern in text:
            return text
        time.sleep(0.3)
    raise AssertionError(f"{pattern!r} not on screen:\n{text}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux missing")
def test_interactive_shell_in_tmux_resize_ctrl_c_exit_status(cli, box, tmp_path):
    status_file = tmp_path / "status"
    env = " ".join(f"{k}={v}" for k, v in cli.env.items()
                   if k in ("BOXLITE_HOME", "BOXLITE_ACCEL"))
    from boxlite_paths import BOXLITE
    cmd = (f"env {env} {BOXLITE} exec -it {box} -- sh; echo $? > {status_file}; sleep 30")
    tmux("kill-server", check=False)
    tmux("new-session", "-d", "-s", "t", "-x", "100", "-y", "30", cmd)
    try:
        time.sleep(3)
        tmux("send-keys", "-t", "t", "stty size", "Enter")
        wait_pane("30 100")
        tmux("resize-window", "-t", "t", "-x", "120", "-y", "40")
        time.sleep(1)
        tmux("send-keys", "-t", "t", "clear; stty size", "Enter")
        wait_pane("40 120")
        tmux("send-keys", "-t", "t", "sleep 100", "Enter")
        time.sleep(2)
        tmux("send-keys", "-t", "t", "C-c")
        tmux("send-keys", "-t", "t", "echo rc=$?", "Enter")
        wait_pane("rc=130")
        tmux("send-keys", "-t", "t", "exit 7", "Enter")
        end = time.monotonic() + 60
        while not status_file.exists() and time.monotonic() < end:
            time.sleep(0.3)
        assert status_file.read_text().strip() == "7"
    finally:
        tmux("kill-server", check=False)


def test_timeout_ends_sleep_with_sigterm(cli, box):
    t0 = time.monotonic()
    r = cli.run("exec", "--timeout", "2", box, "--", "sleep", "100")
    took = time.monotonic() - t0
    assert r.returncode == 128 + signal.SIGTERM, r.stderr
    assert b"timed out" in r.stderr
    assert took < 2 + 8, took


def test_timeout_kills_a_group_that_traps_sigterm(cli, box):
    t0 = time.monotonic()
    r = cli.run("exec", "--timeout", "2", box, "--", "sh", "-c",
                "trap '' TERM; sleep 100 & sleep 101; wait")
    took = time.monotonic() - t0
    assert r.returncode == 128 + signal.SIGKILL, r.stderr
    assert 4 <= took < 4 + 8, took
    ps = ok(cli.run("exec", box, "--", "ps", "-o", "pid,args")).stdout.decode()
    assert "sleep 100" not in ps and "sleep 101" not in ps, ps


def test_50_concurrent_execs_each_1mb_intact(cli, box):
    n, size = 50, 1 << 20
    procs = [cli.popen("exec", box, "--", "sh", "-c", f"yes {i:02d}-line | head -c {size}",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(n)]
    results = [None] * n

    def collect(i):
        out, err = procs[i].communicate(timeout=600)
        results[i] = (procs[i].returncode, out, err)

    threads = [threading.Thread(target=collect, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (rc, out, err) in enumerate(results):
        want = (f"{i:02d}-line\n".encode() * (size // 8 + 1))[:size]
        assert rc == 0 and out == want, (i, rc, len(out), err[-500:])


def test_user_name_uid_gid_and_supplementary_groups(cli, box):
    ok(cli.run("exec", box, "--", "sh", "-c",
               "grep -q '^extra:' /etc/group || echo 'extra:x:2345:user' >> /etc/group"))
    r = ok(cli.run("exec", "-u", "user", box, "--", "id"))
    assert b"uid=1000(user)" in r.stdout and b"2345(extra)" in r.stdout, r.stdout
    r = ok(cli.run("exec", "-u", "1000", box, "--", "id", "-u"))
    assert r.stdout == b"1000\n"
    r = ok(cli.run("exec", "-u", "1234:4321", box, "--", "sh", "-c", "id -u; id -g"))
    assert r.stdout == b"1234\n4321\n"
    r = cli.run("exec", "-u", "nosuchuser", box, "--", "true")
    assert r.returncode != 0 and b"nosuchuser" in r.stderr


def test_supplementary_groups_follow_etc_group(cli, box):
    """The agent reads /etc/group itself: a user named first, in the middle or last of a member
    list gets that group, one named only as a prefix or in a longer name does not; the numeric
    uid gets the same groups; an explicit group replaces them all."""
    lines = ("g-first:x:3101:user,alice\n" "g-mid:x:3102:alice,user,bob\n"
             "g-last:x:3103:alice,user\n" "g-absent:x:3104:alice,bob\n"
             "g-prefix:x:3105:use,users,xuser\n" "g-again:x:3101:user\n")
    ok(cli.run("exec", box, "--", "sh", "-c",
               "cp /etc/group /tmp/group.orig && "
               f"{{ cat /tmp/group.orig; echo; printf '{lines}'; }} > /etc/group"))
    try:
        by_name = ok(cli.run("exec", "-u", "user", box, "--", "id", "-G")).stdout.split()
        got = {int(g) for g in by_name}
        assert {1000, 3101, 3102, 3103} <= got and not got & {3104, 3105}, by_name
        assert by_name == ok(cli.run("exec", "-u", "1000", box, "--", "id", "-G")).stdout.split()
        r = ok(cli.run("exec", "-u", "user:g-absent", box, "--", "sh", "-c", "id -G; echo $HOME"))
        assert r.stdout == b"3104\n/home/user\n", r.stdout
    finally:
        ok(cli.run("exec", box, "--", "cp", "/tmp/group.orig", "/etc/group"))


def creds(cli, box, user):
    """(uid, gid, supplementary groups, HOME) of an exec as user, from /proc/self/status (not
    `id`, which reads /etc/passwd itself)."""
    r = ok(cli.run("exec", "-u", user, box, "--", "sh", "-c",
                   "grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo $HOME", timeout=60))
    lines = r.stdout.decode().splitlines()
    f = {line.split(":")[0]: line.split(":", 1)[1].split() for line in lines[:3]}
    return int(f["Uid"][0]), int(f["Gid"][0]), sorted(int(g) for g in f["Groups"]), lines[3]


def test_passwd_missing_or_a_fifo(cli, box):
    """An /etc/passwd that is a FIFO reads as a missing one instead of hanging the exec: root
    still works (home /root), a number gets gid 0, no groups and home /, a name is unknown."""
    ok(cli.run("exec", box, "--", "sh", "-c",
               "mv /etc/passwd /tmp/passwd.orig && mkfifo /etc/passwd"))
    try:
        assert creds(cli, box, "root") == (0, 0, [], "/root")
        assert creds(cli, box, "") == (0, 0, [], "/root")
        assert creds(cli, box, "4321") == (4321, 0, [], "/")
        r = cli.run("exec", "-u", "user", box, "--", "true", timeout=60)
        assert r.returncode != 0, r.stdout
        assert b'user "user": no such user in /etc/passwd' in r.stderr, r.stderr
    finally:
        ok(cli.run("exec", box, "--", "sh", "-c",
                   "rm -f /etc/passwd && mv /tmp/passwd.orig /etc/passwd"))
    assert creds(cli, box, "user")[:2] == (1000, 1000)


def test_env_and_workdir(cli, box):
    r = ok(cli.run("exec", "-e", "A=1", "-w", "/tmp", box, "--", "sh", "-c", 'echo "$A $(pwd)"'))
    assert r.stdout == b"1 /tmp\n"


def test_detached_exec_outlives_the_cli(cli, box):
    ok(cli.run("exec", box, "--", "rm", "-f", "/tmp/detached"))
    r = ok(cli.run("exec", "-d", box, "--", "sh", "-c", "sleep 3; echo done > /tmp/detached"))
    assert int(r.stdout.strip()) > 1
    time.sleep(6)
    r = ok(cli.run("exec", box, "--", "cat", "/tmp/detached"))
    assert r.stdout == b"done\n"


def test_exit_statuses_signal_and_ctrl_c(cli, box):
    r = cli.run("exec", box, "--", "sh", "-c", "kill -TERM $$")
    assert r.returncode == 128 + signal.SIGTERM
    # the command notes the SIGINT it gets, then dies of it (an exec merely killed when its
    # CLI went away leaves no note)
    ok(cli.run("exec", box, "--", "rm", "-f", "/tmp/got-int"))
    p = cli.popen("exec", box, "--", "sh", "-c",
                  "trap 'echo INT > /tmp/got-int; kill $c; trap - INT; kill -INT $$' INT; "
                  "sleep 101 & c=$!; echo ready; wait $c",
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=60) == 130
    r = ok(cli.run("exec", box, "--", "sh", "-c", "cat /tmp/got-int; ps -o args"))
    assert r.stdout.startswith(b"INT\n"), "SIGINT did not reach the command in the box"
    assert b"sleep 101" not in r.stdout, r.stdout


def test_a_stalled_reader_blocks_no_other_stream(cli, box):
    # exec A floods stdout into a pipe nobody reads: its credit window fills and the guest
    # stops reading its output; exec B in the same box must not notice
    stalled = cli.popen("exec", box, "--", "sh", "-c", "yes stalled | head -c 200000000",
                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        assert stalled.poll() is None
        for _ in range(3):
            t = time.monotonic()
            r = cli.run("exec", box, "--", "sh", "-c", "head -c 1000000 /dev/zero | wc -c")
            assert r.returncode == 0 and r.stdout == b"1000000\n", r.stderr
            assert time.monotonic() - t < 30
        assert stalled.poll() is None  # still stalled, not finished behind our back
    finally:
        stalled.kill()
        stalled.wait()
