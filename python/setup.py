"""setup.py — builds boxlite._core, the CPython extension over libboxlite's public C API
(include/boxlite.h), linked against the static libboxlite of a built checkout.

    /usr/bin/python3 -m pip install --no-build-isolation ./python

Where the build is: $BOXLITE_BUILD, else ../build next to this directory. When its
libboxlite.a is missing, this runs `meson setup` and `ninja` there first. The library keeps
the build tree's paths to the guest files and to boxlite-shim (or BOXLITE_GUEST_DIR /
BOXLITE_SHIM at run time), so keep the build tree where it was built.

`make wheel` (scripts/build-wheel.sh) builds a self-contained wheel from this instead: the
same extension plus the shim, the CLI, the guest files and a QEMU, found by the library
relative to the installed module (docs/packaging.md)."""
import os
import pathlib
import subprocess

from setuptools import Extension, setup

HERE = pathlib.Path(__file__).resolve().parent
ROOT = pathlib.Path(os.environ.get("BOXLITE_SOURCE", HERE.parent)).resolve()
BUILD = pathlib.Path(os.environ.get("BOXLITE_BUILD", ROOT / "build")).resolve()
LIB = BUILD / "src" / "lib" / "libboxlite.a"


def ensure_built():
    if not (ROOT / "include" / "boxlite.h").exists():
        raise SystemExit(f"boxlite: {ROOT}/include/boxlite.h not found: build the Python "
                         "package from a boxlite checkout (or set BOXLITE_SOURCE)")
    if LIB.exists():
        return
    if not (BUILD / "build.ninja").exists():
        subprocess.run(["meson", "setup", str(BUILD), "-Dwerror=true"], cwd=ROOT, check=True)
    subprocess.run(["ninja", "-C", str(BUILD)], check=True)


def link_libraries():
    """The static library's own dependencies, from the build's uninstalled boxlite.pc
    (Requires.private) resolved by pkg-config: one source of truth with meson."""
    pc = BUILD / "meson-uninstalled" / "boxlite-uninstalled.pc"
    names = ["sqlite3"]
    for line in pc.read_text().splitlines() if pc.exists() else []:
        if line.startswith("Requires.private:"):
            names = [n.strip() for n in line.split(":", 1)[1].split(",") if n.strip()]
    flags = subprocess.run(["pkg-config", "--libs"] + names, check=True, capture_output=True,
                           text=True).stdout.split()
    # a static archive named by path (the wheel's libarchive) goes with the objects, ahead of
    # the -l libraries it needs: at the end of the line --as-needed would have dropped them
    return ([f[2:] for f in flags if f.startswith("-l")],
            [f for f in flags if not f.startswith("-l") and not f.endswith(".a")],
            [f for f in flags if f.endswith(".a")])


ensure_built()

LIBS, LINK_FLAGS, ARCHIVES = link_libraries()

core = Extension(
    "boxlite._core",
    sources=sorted(str(p.relative_to(HERE)) for p in (HERE / "src").glob("*.c")),
    depends=[str(p.relative_to(HERE)) for p in (HERE / "src").glob("*.h")] + [str(LIB)],
    include_dirs=[str(ROOT / "include")],
    extra_objects=[str(LIB)] + ARCHIVES,
    libraries=LIBS + ["pthread"],
    extra_compile_args=["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                        "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                        "-fvisibility=hidden"],
    # keep libboxlite's symbols private to the extension
    extra_link_args=LINK_FLAGS + ["-Wl,--exclude-libs,ALL"],
)

setup(
    name="boxlite",
    version="0.1.0",
    description="Run untrusted code in hardware-isolated micro-VMs (the SQLite of sandboxing)",
    packages=["boxlite", "boxlite.sync_api", "boxlite.rest"],
    package_data={"boxlite": ["py.typed", "*.pyi"]},
    ext_modules=[core],
    python_requires=">=3.9",
    # the wheel (scripts/build-wheel.sh) carries the C CLI in boxlite/libexec
    entry_points={"console_scripts": ["boxlite = boxlite._cli:main"]},
    zip_safe=False,
)
