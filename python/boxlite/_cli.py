"""The `boxlite` console script of an installed wheel: runs the C CLI the wheel carries
(boxlite/libexec/boxlite) with the same arguments. In a checkout install (no libexec/), says
where the CLI is instead."""
import os
import sys


def main():
    cli = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libexec", "boxlite")
    if not os.access(cli, os.X_OK):
        sys.exit(f"boxlite: {cli} is missing: this install has no bundled CLI "
                 "(use build/src/cli/boxlite of the checkout, or install the wheel)")
    os.execv(cli, [cli] + sys.argv[1:])
