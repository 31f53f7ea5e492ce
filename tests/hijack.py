"""hijack.py — the host side of tests/hostile's boxlite-hostile: `with Hijack(cli, box, MODE):`
lets the tool take the box's agent channel for the block's one request (the tool says
"ready"/"done" on the box's console), then the agent has it back."""
import time

import pytest

from boxlite_paths import BUILD

TOOL = BUILD / "tests" / "hostile" / "boxlite-hostile"
IN_BOX = "/tmp/boxlite-hostile"


def ok(r):
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    return r


def console(cli, box):
    return cli.run("logs", "--console", box).stdout.decode(errors="replace")


def wait_for(cli, box, word, before, what):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = console(cli, box)
        assert "boxlite-hostile: failed" not in text, text[-3000:]
        if text.count(f"boxlite-hostile: {word}") > before:
            return
        time.sleep(0.5)
    pytest.fail(f"the hostile tool never said {word} for {what}")


class Hijack:
    """`with Hijack(cli, box, mode):` — the tool holds the channel for the block's one request;
    on leaving, the agent has it back and answers again."""

    def __init__(self, cli, box, mode):
        self.cli, self.box, self.mode = cli, box, mode

    def __enter__(self):
        text = console(self.cli, self.box)
        self.ready = text.count("boxlite-hostile: ready")
        self.done = text.count("boxlite-hostile: done")
        ok(self.cli.run("exec", self.box, "--", IN_BOX, self.mode))
        wait_for(self.cli, self.box, "ready", self.ready, self.mode)
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            wait_for(self.cli, self.box, "done", self.done, self.mode)
        return False
