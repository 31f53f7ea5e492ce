"""test_exec_write_nonblock.py — boxlite_exec_write_v2 (non-blocking stdin) and the credit
wakeup on boxlite_exec_fd, through tests/api/exec_write_nonblock.c: partial takes then
EAGAIN at once while the process does not read, a timed write waiting its time, the fd
readable when the process reads, the rest by poll alone, every byte in order (md5)."""
import hashlib

from boxlite_paths import run_api_program


def test_write_v2_nonblocking_with_credit_wakeup(box_env, tmp_path):
    data = bytes((i * 7919 + (i >> 9)) & 0xFF for i in range(3 << 20))
    src = tmp_path / "stdin.bin"
    src.write_bytes(data)
    out, log = run_api_program("exec_write_nonblock", box_env, src, timeout=400)
    assert out == hashlib.md5(data).hexdigest().encode() + b"  -\nok\n", log
