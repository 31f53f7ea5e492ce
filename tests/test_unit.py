"""test_unit.py — runs the C unit tests (TAP) and a short libFuzzer pass of the protocol
decoder and of the host-side tar extraction, so that pytest's summary covers them. `make fuzz` runs the full 60 s pass."""
import os
import pathlib
import subprocess

import pytest

BUILD = pathlib.Path(os.environ.get("BOXLITE_BUILD",
                                    pathlib.Path(__file__).resolve().parent.parent / "build"))
ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["test_proto", "test_reference"])
def test_c_unit(name):
    exe = BUILD / "tests" / "unit" / name
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "not ok" not in r.stdout


@pytest.mark.parametrize("target,corpus_dir", [("fuzz_proto", "corpus"),
                                                ("fuzz_untar", "corpus_untar"),
                                                ("fuzz_text", "corpus_text")])
def test_fuzz_short_run(tmp_path, target, corpus_dir):
    """The protocol decoder and the host's extraction of a box's tar, fuzzed briefly."""
    exe = BUILD / "fuzz" / target
    if not exe.exists():
        pytest.fail(f"{exe} missing: run `make fuzz-build`")
    corpus = tmp_path / "corpus"
    subprocess.run(["cp", "-r", str(ROOT / "tests" / "fuzz" / corpus_dir), str(corpus)],
                   check=True)
    secs = os.environ.get("BOXLITE_FUZZ_SECONDS", "15")
    r = subprocess.run([str(exe), f"-max_total_time={secs}", "-rss_limit_mb=2048",
                        str(corpus)], capture_output=True, text=True, timeout=int(secs) + 120)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "Done" in r.stderr


# images (issue 3): registry documents, references + WWW-Authenticate, layer tars → ext4.
@pytest.mark.parametrize("target", ["manifest", "reference", "layer"])
def test_fuzz_image_parsers_short_run(tmp_path, target):
    exe = BUILD / "fuzz" / f"fuzz_{target}"
    if not exe.exists():
        pytest.fail(f"{exe} missing: run `make fuzz-build`")
    corpus = tmp_path / "corpus"
    subprocess.run(["cp", "-r", str(ROOT / "tests" / "fuzz" / f"corpus_{target}"), str(corpus)],
                   check=True)
    secs = os.environ.get("BOXLITE_FUZZ_SECONDS", "10")
    r = subprocess.run([str(exe), f"-max_total_time={secs}", "-rss_limit_mb=2048",
                        str(corpus)], capture_output=True, text=True, timeout=int(secs) + 120,
                       env=dict(os.environ, TMPDIR=str(tmp_path)))
    assert r.returncode == 0, r.stderr[-4000:]
    assert "Done" in r.stderr
