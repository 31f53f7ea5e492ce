"""codebox.py — CodeBox: a SimpleBox for running Python code (default image python:slim)."""
from typing import Any, Optional

from ._async import Boxlite
from .errors import ExecError
from .simplebox import SimpleBox

__all__ = ["CodeBox"]

#: The interpreter CodeBox runs, looked up in the image's PATH: python:slim and Debian's
#: python3 package both provide it.
PYTHON = "python3"


class CodeBox(SimpleBox):
    """async with CodeBox() as cb: print(await cb.run("print('hi')"))"""

    def __init__(self, image: str = "python:slim", memory_mib: Optional[int] = None,
                 cpus: Optional[int] = None, runtime: Optional[Boxlite] = None, **kwargs: Any):
        super().__init__(image=image, memory_mib=memory_mib, cpus=cpus, runtime=runtime,
                         **kwargs)

    async def run(self, code: str, timeout: Optional[float] = None) -> str:
        """Run Python code; returns its stdout."""
        result = await self.exec(PYTHON, "-c", code, timeout=timeout)
        return result.stdout

    async def run_script(self, script_path: str) -> str:
        """Run a Python script file from the host; returns its stdout."""
        with open(script_path, "r", encoding="utf-8") as f:
            return await self.run(f.read())

    async def install_package(self, package: str) -> str:
        """pip-install a package in the box; returns pip's output. A failed install raises
        ExecError (BoxLite returns the output and says nothing)."""
        return await self.install_packages(package)

    async def install_packages(self, *packages: str) -> str:
        argv = pip_argv(packages)
        return pip_result(argv, await self.exec(*argv))


def pip_argv(packages: "tuple[str, ...]") -> "list[str]":
    if not packages:
        raise ValueError("install_packages needs at least one package")
    return [PYTHON, "-m", "pip", "install", *packages]


def pip_result(argv: "list[str]", result: Any) -> str:
    if result.exit_code != 0:
        raise ExecError(" ".join(argv), result.exit_code,
                        result.stderr.strip() or result.error_message or result.stdout.strip())
    return result.stdout + result.stderr
