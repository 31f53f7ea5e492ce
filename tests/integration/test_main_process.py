"""test_main_process.py — a box's main process through the CLI, as a BoxLite/Docker user sees
it: `create IMAGE -- CMD` + `start` runs entrypoint + cmd with the box, its output is the box's
log (`logs`, `logs -f`; guest bytes escaped, capped), exec runs beside it, its exit stops the
box and is kept (`inspect`; when a stop ended it, its real status: 143 when SIGTERM killed it,
as Docker reports, its own code when it trapped SIGTERM, 137 when SIGKILLed after the grace),
it runs again after stop/start and goes on in a box restored or forked from a full snapshot,
and `run -- CMD` runs CMD only."""
import json
import os
import time

import pytest


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def info(cli, box):
    return json.loads(ok(cli.run("inspect", box)).stdout)[0]


def wait_for(pred, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout}s: {what}")


def logs(cli, box, *flags, **kw):
    return ok(cli.run("logs", *flags, box, **kw)).stdout


@pytest.fixture
def name(cli, request):
    n = request.node.name.replace("[", "-").replace("]", "")[:60]
    yield n
    cli.run("rm", "-f", n)


def create(cli, name, script, *flags):
    ok(cli.run("create", "--name", name, *flags, "--entrypoint", "/bin/sh", "default", "--",
               "-c", script))


def test_main_process_runs_with_the_box_and_exec_runs_beside_it(cli, name):
    create(cli, name, "echo main-out; echo main-err >&2; exec sleep 1000")
    assert info(cli, name)["main_process"] is True
    ok(cli.run("start", name))
    wait_for(lambda: b"main-out" in logs(cli, name), "the main process's output in logs")
    out = logs(cli, name)
    assert b"main-out\n" in out and b"main-err\n" in out
    assert b"boxlite-agent" not in out  # the console is apart: logs --console
    # exec runs beside it: the main process is there, and the box still runs
    r = ok(cli.run("exec", name, "--", "sh", "-c", "ps; echo beside"))
    assert b"sleep 1000" in r.stdout and r.stdout.endswith(b"beside\n")
    i = info(cli, name)
    assert i["state"]["status"] == "running" and i["state"]["exit_code"] is None
    # stop: it is ended by the stop's SIGTERM, recorded as Docker records it (128 + 15)
    ok(cli.run("stop", name))
    st = info(cli, name)["state"]
    assert st["status"] == "stopped" and st["exit_code"] == 143, st
    # start: it starts again with the box (no exit yet); the log keeps both boots
    ok(cli.run("start", name))
    assert info(cli, name)["state"]["exit_code"] is None
    wait_for(lambda: logs(cli, name).count(b"main-out\n") == 2, "a second boot's output")
    assert ok(cli.run("exec", name, "--", "pidof", "sleep")).stdout.strip()


def test_main_process_exit_stops_the_box_and_is_recorded(cli, name):
    create(cli, name, "echo working; sleep 1; echo done; exit 7")
    ok(cli.run("start", name))
    wait_for(lambda: info(cli, name)["state"]["status"] == "stopped", "the box stopped", 90)
    st = info(cli, name)["state"]
    assert st["exit_code"] == 7, st
    assert "main process exited with status 7" in st["reason"]
    assert logs(cli, name) == b"working\ndone\n"
    # killed from beside it: 128 + SIGTERM
    ok(cli.run("rm", "-f", name))
    create(cli, name, "exec sleep 1000")
    ok(cli.run("start", name))
    # (the box may stop before this exec's own exit is told: its status is not checked)
    cli.run("exec", name, "--", "sh", "-c", "kill $(pidof sleep)")
    wait_for(lambda: info(cli, name)["state"]["status"] == "stopped", "the box stopped", 90)
    assert info(cli, name)["state"]["exit_code"] == 143


@pytest.mark.parametrize("script,code", [
    ("trap 'echo bye; exit 7' TERM; echo up; while :; do sleep 0.2; done", 7),
    ("trap '' TERM; echo up; while :; do sleep 0.2; done", 137),
], ids=["traps-term", "ignores-term"])
def test_stop_records_the_main_process_real_status(cli, name, script, code):
    # a stop's SIGTERM: a main process that traps it exits with its own code, recorded as is
    # (not a made-up 143); one that ignores it is SIGKILLed after the grace: 128 + 9
    create(cli, name, script)
    ok(cli.run("start", name))
    wait_for(lambda: b"up\n" in logs(cli, name), "the main process runs")
    ok(cli.run("stop", name))
    st = info(cli, name)["state"]
    assert st["status"] == "stopped" and st["exit_code"] == code, st
    if code == 7:
        assert b"up\nbye\n" in logs(cli, name)  # its last words, said after the SIGTERM


def test_logs_follow_until_the_box_stops(cli, name):
    create(cli, name, "echo first; sleep 3; echo second")
    ok(cli.run("start", name))
    r = ok(cli.run("logs", "-f", name, timeout=120))
    assert r.stdout == b"first\nsecond\n"
    assert info(cli, name)["state"]["exit_code"] == 0


def test_logs_escape_guest_bytes_and_are_capped(cli, name):
    # 300 KiB of output with a terminal escape, then a last marker; files capped at 64 KiB
    create(cli, name, "printf 'evil\\033]0;title\\007\\n'; "
           "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
           "xxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done; echo last-marker")
    ok(cli.run("start", name, env={"BOXLITE_MAX_MAIN_LOG": "64k"}))
    wait_for(lambda: info(cli, name)["state"]["status"] == "stopped", "the box stopped", 120)
    home = cli.env["BOXLITE_HOME"]
    bid = info(cli, name)["id"]
    d = os.path.join(home, "boxes", bid)
    assert os.path.getsize(os.path.join(d, "main.log")) <= 64 << 10
    assert os.path.getsize(os.path.join(d, "main.log.1")) <= 64 << 10
    out = logs(cli, name)
    assert len(out) <= 128 << 10 and out.endswith(b"last-marker\n")
    assert b"\x1b" not in out and b"\x07" not in out
    # the escape as the first line, before any rotation
    ok(cli.run("rm", "-f", name))
    create(cli, name, "printf 'evil\\033]0;title\\007\\n'")
    ok(cli.run("start", name))
    wait_for(lambda: info(cli, name)["state"]["status"] == "stopped", "the box stopped", 90)
    out = logs(cli, name)
    assert out.startswith(b"evil") and b"\x1b" not in out and b"\x07" not in out


def test_run_runs_its_command_not_the_images(cli):
    # the default image's cmd is `sh`: it must not run beside run's own command
    r = ok(cli.run("run", "--rm", "default", "--", "sh", "-c", "ps | grep -c ' sh$'; true"))
    assert r.stdout.split()[0] == b"0", r.stdout


# The main process waits for /tmp/quit, then exits with the code written there.
WAITER = ("echo started; while [ ! -f /tmp/quit ]; do sleep 0.2; done; "
          "echo quitting-$(cat /tmp/quit); exit $(cat /tmp/quit)")


def quit_main(cli, box, code):
    # (the box may stop before this exec's own exit is told: its status is not checked)
    cli.run("exec", box, "--", "sh", "-c", f"echo {code} > /tmp/quit")
    wait_for(lambda: info(cli, box)["state"]["status"] == "stopped", f"{box} stopped", 90)


def test_restored_and_forked_boxes_run_their_main_process(cli, name):
    """A box resumed from a full snapshot (restore, fork) goes on with the main process it
    ran when saved, as a cold-started box does: its output in the box's log, its exit
    recorded as exit_code and stopping the box."""
    create(cli, name, WAITER)
    ok(cli.run("start", name))
    wait_for(lambda: b"started" in logs(cli, name), "the main process started")
    ok(cli.run("snapshot", "create", "--memory", name, "live"))
    fork = ok(cli.run("fork", "-n", "1", name, "live", timeout=300)).stdout.decode().split()[0]
    try:
        assert info(cli, fork)["state"]["status"] == "running"
        quit_main(cli, fork, 9)
        assert info(cli, fork)["state"]["exit_code"] == 9
        assert b"quitting-9\n" in logs(cli, fork)
        assert info(cli, name)["state"]["status"] == "running"  # the origin's runs on
        ok(cli.run("stop", name))
        ok(cli.run("snapshot", "restore", name, "live"))
        assert info(cli, name)["state"]["exit_code"] is None
        quit_main(cli, name, 4)
        st = info(cli, name)["state"]
        assert st["exit_code"] == 4 and "main process exited with status 4" in st["reason"], st
        assert logs(cli, name).endswith(b"quitting-4\n")
    finally:
        cli.run("rm", "-f", fork)


def gone(cli, box):
    r = cli.run("inspect", box)
    return r.returncode != 0 and b"no such box" in r.stderr


def test_create_no_main_runs_only_what_is_execd(cli, name):
    # BoxLite's/Docker's entrypoint + cmd are kept, but --no-main runs neither
    ok(cli.run("create", "--name", name, "--no-main", "--entrypoint", "/bin/sh", "default",
               "--", "-c", "echo main-ran; exit 3"))
    assert info(cli, name)["main_process"] is False
    ok(cli.run("start", name))
    assert ok(cli.run("exec", name, "--", "echo", "beside")).stdout == b"beside\n"
    time.sleep(1)
    st = info(cli, name)["state"]
    assert st["status"] == "running" and st["exit_code"] is None, st
    assert b"main-ran" not in logs(cli, name)
    ok(cli.run("stop", name))
    assert info(cli, name)["state"]["exit_code"] is None  # no main process: nothing ended


def test_auto_delete_flag_deletes_the_stopped_box_later(cli, name):
    # BoxLite's auto_delete (seconds after the stop), given on the command line
    create(cli, name, "echo bye", "--auto-delete", "3")
    assert info(cli, name)["auto_delete"] == 3
    ok(cli.run("start", name))
    wait_for(lambda: info(cli, name)["state"]["status"] == "stopped" or gone(cli, name),
             "the box stopped", 90)
    wait_for(lambda: gone(cli, name), "the box deleted after 3 s", 60)
    # 0 keeps it, even with --rm (auto_delete overrides auto_remove)
    create(cli, name, "echo bye", "--rm", "--auto-delete", "0")
    assert info(cli, name)["auto_delete"] == 0
    ok(cli.run("start", name))
    wait_for(lambda: info(cli, name)["state"]["status"] == "stopped", "the box stopped", 90)
    time.sleep(2)
    assert info(cli, name)["state"]["exit_code"] == 0
    # a bad value is refused before anything is made
    r = cli.run("create", "--name", name + "-x", "--auto-delete", "-1", "default")
    assert r.returncode == 2 and b"--auto-delete" in r.stderr
    assert gone(cli, name + "-x")


def test_run_auto_delete_and_no_main(cli, name):
    r = ok(cli.run("run", "--name", name, "--no-main", "--auto-delete", "1", "default", "--",
                   "sh", "-c", "echo ran"))
    assert r.stdout == b"ran\n"
    wait_for(lambda: gone(cli, name), "run's box deleted 1 s after its stop", 60)
