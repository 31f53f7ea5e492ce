"""walltime.py — the wall time of one command, measured without subprocess's timeout polling:
`subprocess.run(..., timeout=T)` waits for a child by polling with sleeps that double up to
50 ms, so every figure it times is rounded up to the next poll (a 216 ms step read as 265).
Here the wait blocks (waitpid) and a timer thread kills the command at the limit. Shared by
bench/boot and bench/jail."""
import subprocess
import threading
import time


def timed(args, env=None, limit=120, stdout=subprocess.DEVNULL, stderr=None):
    """Seconds from spawning args until it exited; SystemExit when it failed or ran past limit."""
    t = time.monotonic()
    p = subprocess.Popen([str(a) for a in args], env=env, stdout=stdout, stderr=stderr)
    timer = threading.Timer(limit, p.kill)
    timer.start()
    try:
        rc = p.wait()
    finally:
        timer.cancel()
    dt = time.monotonic() - t
    if rc != 0:
        raise SystemExit(f"{' '.join(map(str, args))}: exit status {rc}"
                         + (f" (killed after {limit} s)" if dt >= limit else ""))
    return dt
