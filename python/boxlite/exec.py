"""exec.py — ExecResult, what SimpleBox.exec returns, and the timeout it raises instead."""
from dataclasses import dataclass
from typing import Optional, Sequence

from .errors import TimeoutError

__all__ = ["ExecResult"]


@dataclass
class ExecResult:
    """Result of SimpleBox.exec.

    exit_code: the process's code, or -N when signal N ended it (BoxLite's rule; 127 when
    the command does not exist); stdout/stderr: the whole output, decoded as UTF-8;
    error_message: why the process could not start, else None; timed_out: ended by timeout."""

    exit_code: int
    stdout: str
    stderr: str
    error_message: Optional[str] = None
    timed_out: bool = False


def raise_if_timed_out(timed_out: bool, cmd: str, args: Sequence[str],
                       timeout: Optional[float]) -> None:
    """SimpleBox.exec's timeout, as BoxLite raises it: TimeoutError "Command '…' timed out
    after N seconds" (the process has been ended by then)."""
    if timed_out:
        after = f" after {timeout:g} seconds" if timeout is not None else ""
        raise TimeoutError(f"Command '{' '.join([cmd, *args])}' timed out{after}")
