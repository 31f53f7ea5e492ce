"""test_starve.py — a box cannot starve its own agent, and the host never waits on a box
forever: a fork bomb and a memory hog inside real boxes (the agent still answers, timeouts
fire, the CLI honours signals, a sibling box and the host stay responsive, stop works), and a
hung guest (QEMU stopped with SIGSTOP) that cannot answer at all (host-side deadlines).

Every wait is bounded: subprocess timeouts are the test's own deadlines, well above the
figures asserted, so a regression fails instead of hanging the suite."""
import json
import os
import signal
import subprocess
import time

import pytest

BOMB = "f(){ f|f& };f"  # the classic `:(){ :|:& };:`, with a name busybox sh accepts
# A tmpfs larger than the guest's RAM filled by dd: its pages cannot be reclaimed, and killing
# dd frees nothing (without the workload's memory.max the guest kernel panics: no killable
# process left).
HOG = ("mkdir -p /mnt/hog && mount -t tmpfs -o size=4g hog /mnt/hog && "
       "dd if=/dev/zero of=/mnt/hog/fill bs=1M")


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def timed(fn, *a, **kw):
    t0 = time.monotonic()
    r = fn(*a, **kw)
    return r, time.monotonic() - t0


def info(cli, box):
    return json.loads(ok(cli.run("inspect", box)).stdout)[0]


def make_box(cli, name):
    cli.run("rm", "-f", name)
    ok(cli.run("create", "--name", name, "-d"))
    ok(cli.run("start", name, timeout=300))
    return name


def guest_tasks(cli, box):
    r = ok(cli.run("exec", box, "--", "sh", "-c", "ls -d /proc/[0-9]* | wc -l", timeout=120))
    return int(r.stdout.split()[0])


def stop_within(cli, box, limit):
    r, took = timed(cli.run, "stop", box, timeout=limit + 60)
    ok(r)
    assert took < limit, took
    assert info(cli, box)["state"]["status"] == "stopped"


def sigterm_cli_within(cli, box, limit, *cmd):
    """`timeout -s TERM 10 boxlite exec BOX CMD`: timeout's status 124, ended within limit."""
    r, took = timed(subprocess.run, ["timeout", "-s", "TERM", "10", str(cli_path(cli)), "exec",
                                     box, "--", *cmd], env=cli.env, capture_output=True,
                    timeout=limit + 60)
    assert r.returncode == 124, (r.returncode, r.stderr[-1000:])
    assert took < limit, (took, r.stderr[-1000:])
    return r


def cli_path(cli):
    from boxlite_paths import BOXLITE
    return BOXLITE


# ---- a fork bomb --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bombed(cli):
    box = make_box(cli, "starve-bomb")
    sibling = make_box(cli, "starve-sibling")
    ok(cli.run("exec", "-d", box, "--", "sh", "-c", BOMB))
    time.sleep(5)
    yield box, sibling
    cli.run("rm", "-f", box, timeout=120)
    cli.run("rm", "-f", sibling, timeout=120)


def test_bomb_is_running_and_the_agent_answers_an_exec(cli, bombed):
    box, _ = bombed
    r, took = timed(cli.run, "exec", box, "--", "sh", "-c",
                    "echo alive; ls -d /proc/[0-9]* | wc -l", timeout=120)
    ok(r)
    assert r.stdout.startswith(b"alive"), r.stdout
    assert int(r.stdout.split()[1]) > 100, r.stdout  # the bomb really runs
    assert took < 20, took


def test_bomb_exec_timeout_fires_on_time(cli, bombed):
    box, _ = bombed
    r, took = timed(cli.run, "exec", "--timeout", "5", box, "--", "sleep", "100", timeout=120)
    assert r.returncode == 128 + signal.SIGTERM, (r.returncode, r.stderr)
    assert b"timed out" in r.stderr
    assert took < 5 + 8, took


def test_bomb_sigterm_to_the_cli_ends_it(cli, bombed):
    box, _ = bombed
    sigterm_cli_within(cli, box, 15 + 5, "sleep", "1000")


def test_bomb_timeout_kills_a_bomb_that_leaves_its_process_group(cli, bombed):
    """An exec's timeout takes everything the exec started (its cgroup), setsid or not."""
    box, _ = bombed
    r, took = timed(cli.run, "exec", "--timeout", "3", box, "--", "sh", "-c",
                    "setsid sh -c 'g(){ g|g& };g; sleep 1000' & sleep 1000", timeout=120)
    assert r.returncode in (128 + signal.SIGTERM, 128 + signal.SIGKILL), r.stderr
    assert took < 3 + 10, took


def test_bomb_sibling_box_and_host_stay_responsive(cli, bombed):
    _, sibling = bombed
    r, took = timed(cli.run, "exec", sibling, "--", "echo", "sibling", timeout=120)
    ok(r)
    assert took < 20, took
    r, took = timed(subprocess.run, ["sh", "-c", "true"], timeout=60)
    assert r.returncode == 0 and took < 5, took


def test_bomb_box_stops(cli, bombed):
    box, _ = bombed
    stop_within(cli, box, 30)


# ---- a memory hog -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hogged(cli):
    box = make_box(cli, "starve-hog")
    ok(cli.run("exec", "-d", box, "--", "sh", "-c", HOG))
    time.sleep(15)
    yield box
    cli.run("rm", "-f", box, timeout=120)


def test_hog_filled_memory_and_the_agent_answers(cli, hogged):
    r, took = timed(cli.run, "exec", hogged, "--", "sh", "-c",
                    "echo alive; du -m /mnt/hog/fill", timeout=120)
    ok(r)
    assert took < 20, took
    assert int(r.stdout.split()[1]) > 100, r.stdout  # the tmpfs holds much of the RAM
    r, took = timed(cli.run, "exec", "--timeout", "3", hogged, "--", "sleep", "100",
                    timeout=120)
    assert r.returncode == 128 + signal.SIGTERM, (r.returncode, r.stderr)
    assert took < 3 + 8, took


def test_hog_box_stops(cli, hogged):
    stop_within(cli, hogged, 30)


# ---- a guest that cannot answer at all ----------------------------------------------------

@pytest.fixture
def hung(cli):
    box = make_box(cli, "starve-hung")
    qemu = info(cli, box)["state"]["qemu_pid"]
    assert qemu > 0
    os.kill(qemu, signal.SIGSTOP)
    yield box
    try:
        os.kill(qemu, signal.SIGCONT)
    except ProcessLookupError:
        pass
    cli.run("rm", "-f", box, timeout=120)


def test_hung_guest_exec_timeout_is_kept_on_the_host(cli, hung):
    r, took = timed(cli.run, "exec", "--timeout", "2", hung, "--", "sleep", "100", timeout=120)
    assert r.returncode == 128 + signal.SIGKILL, (r.returncode, r.stderr)
    assert b"did not report the end" in r.stderr, r.stderr
    assert took < 2 + 5 + 5, took


def test_hung_guest_cli_leaves_after_the_grace_period(cli, hung):
    r = sigterm_cli_within(cli, hung, 10 + 5 + 5, "sleep", "1000")
    assert b"did not answer" in r.stderr, r.stderr


def test_hung_guest_second_signal_exits_at_once(cli, hung):
    p = cli.popen("exec", hung, "--", "sleep", "1000", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    try:
        time.sleep(2)
        p.send_signal(signal.SIGINT)
        time.sleep(0.5)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=30) == 128 + signal.SIGINT
        assert time.monotonic() - t0 < 2
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_hung_guest_copy_fails_instead_of_hanging(cli, hung, tmp_path):
    """A copy has no timeout of its own: the library's watchdog PINGs a silent box and gives
    up 40 s after it last heard anything."""
    r, took = timed(cli.run, "cp", f"{hung}:/etc/hostname", str(tmp_path / "out"), timeout=180)
    assert r.returncode != 0, r.stdout  # (copy.c words it as the archive ending early)
    assert took < 40 + 15, took
    src = tmp_path / "in.txt"
    src.write_bytes(b"x" * 1000)
    r, took = timed(cli.run, "cp", str(src), f"{hung}:/tmp/", timeout=180)
    assert r.returncode != 0, r.stdout
    assert took < 40 + 15, took


def test_hung_guest_stops(cli, hung):
    stop_within(cli, hung, 30)
