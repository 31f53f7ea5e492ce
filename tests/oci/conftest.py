"""conftest.py — registers the OCI runtime tests' fixtures, which live in oci_helpers.py."""
from oci_helpers import image, runtime, subreaper  # noqa: F401 (fixtures)
