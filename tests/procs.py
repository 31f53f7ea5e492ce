"""procs.py — whether a process the tests watch is gone. A zombie counts as gone: it has
exited, and only waits for a parent to reap it (the OCI tests make pytest a child subreaper,
so a double-forked monitor that exits while they run stays a zombie of pytest's)."""


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat[stat.rindex(")") + 2] == "Z"
