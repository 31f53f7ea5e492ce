"""memstat.py — what the host pays for running boxes, read from /proc: the processes of a
box (its monitor and its QEMU: those whose working directory is the box's directory), their
PSS (smaps_rollup) and CPU time. Shared by bench/density and bench/snapshot."""
import os

TICK = os.sysconf("SC_CLK_TCK")


def box_pids(home, box_ids):
    """{box id: [pids]} of the boxes' shim and QEMU processes."""
    want = {os.path.join(str(home), "boxes", b): b for b in box_ids}
    out = {b: [] for b in box_ids}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cwd in want:
            out[want[cwd]].append(int(pid))
    return out


def pss(pids):
    """Sum of the processes' PSS, bytes (those gone meanwhile count 0)."""
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def rss(pids):
    """Sum of the processes' RSS, bytes."""
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Rss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def cpu_seconds(pids):
    """User + system CPU time of the processes (all their threads), seconds."""
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK


def mem_available():
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def machine():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} CPUs, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') >> 30} GiB"


def load():
    return "load %.2f %.2f %.2f" % os.getloadavg()
