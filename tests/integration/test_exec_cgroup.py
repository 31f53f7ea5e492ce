"""test_exec_cgroup.py — each exec lands in its own cgroup (work/eN) whichever way the agent
puts it there: born in it (clone3 CLONE_INTO_CGROUP) or, where the kernel refuses that, forked
beside the agent and moved by writing cgroup.procs (src/agent/cgroup.c). The fallback is
forced as a real guest forces it: work's pids.max full (a clone3 into the group counts against
it and fails, a move does not), set by guest root; the exec still runs in its group, under its
limits."""
import json

import pytest


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


@pytest.fixture
def box(cli, request):
    name = request.node.name[:60]
    cli.run("rm", "-f", name)
    ok(cli.run("create", "--name", name, "--no-main", "-d"))
    ok(cli.run("start", name, timeout=300))
    yield name
    cli.run("rm", "-f", name)


# guest root sees the guest's cgroup2 tree where it mounts it
WORK = "/tmp/cg/work"
MOUNT = "mkdir -p /tmp/cg && (mountpoint -q /tmp/cg || mount -t cgroup2 none /tmp/cg) && "


def sh(cli, box, script, **kw):
    return cli.run("exec", box, "--", "sh", "-c", script, timeout=120, **kw)


def own_group(out):
    """The cgroup a process read from its /proc/self/cgroup ("0::/work/e7")."""
    line = out.decode().strip().splitlines()[0]
    assert line.startswith("0::"), line
    return line[3:]


def test_exec_lands_in_its_group_born_there_or_moved(cli, box):
    born = own_group(ok(sh(cli, box, "cat /proc/self/cgroup")).stdout)
    assert born.startswith("/work/e"), born
    # a process that outlives its exec keeps work's pids.current above 1 ...
    ok(sh(cli, box, "setsid sleep 1000 </dev/null >/dev/null 2>&1 &"))
    # ... then, with work's pids.max at 1, no clone3 into work/eN can succeed: the agent forks
    # in its own group and the child moves itself (the cgroup.procs fallback)
    ok(sh(cli, box, MOUNT + f"echo 1 > {WORK}/pids.max"))
    try:
        # (shell built-ins only up to the fork: its own cgroup, then a fork refused)
        r = sh(cli, box, "read g </proc/self/cgroup; echo $g; sleep 0; echo forked")
        moved = own_group(r.stdout)
        assert moved.startswith("/work/e") and moved != born, (moved, r.stdout, r.stderr)
        # under its group's limits: work's pids.max refuses the shell's fork
        assert b"forked" not in r.stdout and b"can't fork" in r.stderr, (r.stdout, r.stderr)
    finally:
        ok(sh(cli, box, f"echo max > {WORK}/pids.max"))
    out = ok(sh(cli, box, "cat /proc/self/cgroup; sleep 0 && echo forked")).stdout
    assert own_group(out).startswith("/work/e") and b"forked" in out
