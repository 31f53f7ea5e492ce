"""exec.py — ExecResult, what SimpleBox.exec returns."""
from dataclasses import dataclass
from typing import Optional

__all__ = ["ExecResult"]


@dataclass
class ExecResult:
    """Result of SimpleBox.exec.

    exit_code: the status a shell reports (128+N when killed by signal N, 127 when the
    command does not exist); stdout/stderr: the whole output, decoded as UTF-8;
    error_message: why the process could not start, else None; timed_out: ended by timeout."""

    exit_code: int
    stdout: str
    stderr: str
    error_message: Optional[str] = None
    timed_out: bool = False
