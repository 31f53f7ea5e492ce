"""test_unit.py — runs the C unit tests (TAP) and a short libFuzzer pass of the fuzz targets
(the protocol decoder, the host-side and the agent's tar extraction, the image parsers and
import, .boxlite archives, registries.json, QMP replies, `boxlite serve`'s request decoders,
...), so that pytest's summary covers them; and shows the extraction's harness stops on an
escape planted in a copy of untar.c, and the serve decoders' on bugs planted in decode.c.
`make fuzz` runs the full 60 s pass."""
import os
import pathlib
import subprocess

import pytest

BUILD = pathlib.Path(os.environ.get("BOXLITE_BUILD",
                                    pathlib.Path(__file__).resolve().parent.parent / "build"))
ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["test_proto", "test_reference", "test_netpolicy", "test_import",
                                  "test_qmp", "test_secrets_http", "test_passwd"])
def test_c_unit(name):
    exe = BUILD / "tests" / "unit" / name
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "not ok" not in r.stdout


@pytest.mark.parametrize("target,corpus_dir", [("fuzz_proto", "corpus"),
                                                ("fuzz_untar", "corpus_untar"),
                                                ("fuzz_text", "corpus_text"),
                                                ("fuzz_dns", "corpus_dns"),
                                                ("fuzz_qcow2", "corpus_qcow2"),
                                                ("fuzz_agent_untar", "corpus_agent_untar"),
                                                ("fuzz_passwd", "corpus_passwd"),
                                                ("fuzz_qmp", "corpus_qmp"),
                                                ("fuzz_oci_config", "corpus_oci_config"),
                                                ("fuzz_secrets", "corpus_secrets"),
                                                ("fuzz_serve_decode", "corpus_serve_decode")])
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


# images (issue 3): registry documents, references + WWW-Authenticate, layer tars → ext4;
# (issue 11) docker-save / OCI-layout import, .boxlite archives, registries.json.
@pytest.mark.parametrize("target", ["manifest", "reference", "layer", "import", "boxarchive",
                                    "registries"])
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


def test_fuzz_untar_finds_a_planted_escape(tmp_path):
    """The harness can fail: untar.c with its directory opens following links (plain openat
    instead of openat2 RESOLVE_BENEATH|NO_SYMLINKS) is built like `make fuzz-build` builds
    fuzz_untar, and the short run on the committed corpus must stop on an ESCAPE."""
    src = (ROOT / "src" / "lib" / "box" / "untar.c").read_text()
    site = "return (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));"
    assert site in src, "untar.c changed: update the planted escape here"
    planted = tmp_path / "untar.c"
    planted.write_text(src.replace(
        site, "(void)how; return openat(rootfd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);"))
    exe = tmp_path / "fuzz_untar_planted"
    make = (ROOT / "Makefile").read_text()
    wrap = next(w for w in make.split() if w.startswith("-Wl,--wrap="))
    subprocess.run(["clang-14", "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
                    "-fno-sanitize-recover=all", "-D_GNU_SOURCE", f"-I{ROOT}/src/lib",
                    f"-I{ROOT}/src/lib/box", f"-I{ROOT}/include", f"-I{ROOT}/src/common", str(planted),
                    str(ROOT / "src/lib/error.c"), str(ROOT / "tests/fuzz/fuzz_untar.c"), wrap,
                    "-larchive", "-o", str(exe)], check=True, timeout=300)
    corpus = tmp_path / "corpus"
    subprocess.run(["cp", "-r", str(ROOT / "tests" / "fuzz" / "corpus_untar"), str(corpus)],
                   check=True)
    secs = os.environ.get("BOXLITE_FUZZ_SECONDS", "15")
    r = subprocess.run([str(exe), f"-max_total_time={secs}", "-rss_limit_mb=2048",
                        f"-artifact_prefix={tmp_path}/", str(corpus)], capture_output=True,
                       text=True, timeout=int(secs) + 120, cwd=tmp_path)
    assert r.returncode != 0 and "fuzz_untar: ESCAPE" in r.stderr, r.stderr[-3000:]


# (issue 16) Each plant is one off-by-one in a copy of src/serve/decode.c: a vector one slot
# short of its NULL terminator (ASan), and a tunnel port range one too wide (the harness's
# range check; the corpus holds the edge values).
SERVE_PLANTS = {
    "vector": ("    vec = calloc(n + 1, sizeof(*vec));", "    vec = calloc(n, sizeof(*vec));",
               "heap-buffer-overflow"),
    "port": ("port < 1 || port > 65535)", "port < 1 || port > 65536)",
             "fuzz_serve_decode: port range"),
}


@pytest.mark.parametrize("plant", sorted(SERVE_PLANTS))
def test_fuzz_serve_decode_finds_a_planted_bug(tmp_path, plant):
    """The harness can fail: decode.c with the plant, built like `make fuzz-build` builds
    fuzz_serve_decode, must stop within the short run on the committed corpus."""
    site, bug, finding = SERVE_PLANTS[plant]
    src = (ROOT / "src" / "serve" / "decode.c").read_text()
    assert site in src, "decode.c changed: update the plant here"
    planted = tmp_path / "decode.c"
    planted.write_text(src.replace(site, bug, 1))
    exe = tmp_path / "fuzz_serve_decode_planted"
    flags = subprocess.run(["pkg-config", "--cflags", "jansson"], capture_output=True, text=True,
                           check=True).stdout.split()
    subprocess.run(["clang-14", "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
                    "-fno-sanitize-recover=all", "-D_GNU_SOURCE", f"-I{ROOT}/include",
                    f"-I{ROOT}/src/serve", *flags, str(planted),
                    str(ROOT / "tests/fuzz/fuzz_serve_decode.c"), "-ljansson", "-o", str(exe)],
                   check=True, timeout=300)
    corpus = tmp_path / "corpus"
    subprocess.run(["cp", "-r", str(ROOT / "tests" / "fuzz" / "corpus_serve_decode"),
                    str(corpus)], check=True)
    secs = os.environ.get("BOXLITE_FUZZ_SECONDS", "15")
    r = subprocess.run([str(exe), f"-max_total_time={secs}", "-rss_limit_mb=2048",
                        f"-artifact_prefix={tmp_path}/", str(corpus)], capture_output=True,
                       text=True, timeout=int(secs) + 120, cwd=tmp_path)
    assert r.returncode != 0 and finding in r.stderr, r.stderr[-3000:]
