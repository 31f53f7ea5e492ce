"""boxlite_paths.py — where the build under test is, for every test module (a plain module:
`from conftest import ...` is ambiguous once tests/python has a conftest of its own)."""
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("BOXLITE_BUILD", ROOT / "build"))
BOXLITE = BUILD / "src" / "cli" / "boxlite"
