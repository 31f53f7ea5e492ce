# Makefile — the README's two commands and their helpers: `make demo` (build everything and
# run a command in a box), `make test` (build, build the Python module, check formatting, run
# unit + integration + Python tests). Both install the Debian packages they need first. The
# build itself is Meson; the Python module is built by pip from ./python, offline. `make wheel`
# builds dist/boxlite-<version>-<tags>.whl, the self-contained package (docs/packaging.md).
BUILD   ?= build
PYTHON  ?= /usr/bin/python3
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 60
CLANG   ?= clang-14
# src/lib's subsystem folders, as src/lib/meson.build's lib_inc
LIB_INC  = -Isrc/lib -Isrc/lib/state -Isrc/lib/image -Isrc/lib/box -Isrc/lib/snapshot -Isrc/lib/net -Isrc/lib/disk -Isrc/lib/template
SOURCES  = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

.PHONY: all deps build python python-install wheel demo test unit check-format check-abi format fuzz fuzz-build fault bench clean

all: build

deps:
	./scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=true

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# The Python package, built against this build's libboxlite.a and installed under
# $(BUILD)/python (the tests put it on sys.path): no root, no venv, no network.
python: build
	rm -rf $(BUILD)/python python/build
	BOXLITE_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pip install --no-build-isolation --no-index \
	  --no-deps --target $(abspath $(BUILD))/python ./python

# The same, into the system's Python (Debian 12's pip wants --break-system-packages).
python-install: build
	BOXLITE_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pip install --no-build-isolation --no-index \
	  --no-deps --break-system-packages ./python

# One self-contained wheel: the module, the CLI, the shim, the guest files and our own QEMU
# (scripts/build-qemu.sh, cached under ~/.cache/boxlite/qemu). docs/packaging.md.
wheel: build
	BUILD=$(abspath $(BUILD)) PYTHON=$(PYTHON) ./scripts/build-wheel.sh

demo: build
	$(BUILD)/src/cli/boxlite run --rm -- sh -c 'echo "hello from a micro-VM: $$(uname -sr), $$(cat /proc/cpuinfo | grep -c ^processor) cpu"; . /etc/os-release; echo "image: $$PRETTY_NAME"'

check-format:
	clang-format --dry-run --Werror $(SOURCES)

format:
	clang-format -i $(SOURCES)

# libboxlite's ABI against the 1.0 baseline in abi/: additions pass, anything else fails.
check-abi: build
	./scripts/check-abi.sh $(BUILD)

# libboxlite (and bl_core) compiled once for the fuzz targets that need the store, the
# image code or the archive code around their parser: coverage + ASan + UBSan, no libFuzzer main.
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
  -D_GNU_SOURCE -DBOXLITE_BUILDING -DBL_REL_PREFIX='".."' -DBL_REL_DATADIR='"share"' \
  -DBL_REL_LIBEXECDIR='"libexec"' -Iinclude -Isrc/common $(LIB_INC)
FUZZ_LIB_SRC = $(wildcard src/lib/*.c src/lib/*/*.c) src/common/proto.c src/common/frameio.c
FUZZ_LIB_OBJ = $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(FUZZ_LIB_SRC))
FUZZ_LIBS = -lsqlite3 -lcurl -larchive -lext2fs -lcom_err -ljansson -lcrypto -lpthread

$(BUILD)/fuzz/obj/%.o: %.c $(wildcard src/lib/*.h src/lib/*/*.h include/*.h src/common/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) $$(pkg-config --cflags ext2fs) -c $< -o $@

$(BUILD)/fuzz/libboxlite-fuzz.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

# target name → its source in tests/fuzz, linked against that library
FUZZ_LIB_TARGETS = import boxarchive registries

fuzz-build: deps $(BUILD)/fuzz/libboxlite-fuzz.a
	mkdir -p $(BUILD)/fuzz
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc/common \
	  src/common/proto.c src/common/frameio.c tests/fuzz/fuzz_proto.c -o $(BUILD)/fuzz/fuzz_proto
	# images (issue 3): registry documents, references + WWW-Authenticate, layer tars → ext4
	for t in manifest reference layer; do \
	  $(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	    -Iinclude -Isrc/common $(LIB_INC) $$(pkg-config --cflags ext2fs) tests/fuzz/fuzz_$$t.c \
	    src/lib/image/reference.c src/lib/image/manifest.c src/lib/image/registry.c src/lib/image/curl_lazy.c \
	    src/lib/image/store.c src/lib/image/layer.c src/lib/state/db.c src/common/proto.c \
	    src/lib/image/ext4.c src/lib/error.c src/lib/util.c src/lib/bounds.c \
	    -lcurl -larchive -lext2fs -lcom_err -ljansson -lcrypto -lsqlite3 \
	    -o $(BUILD)/fuzz/fuzz_$$t || exit 1; \
	done
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  $(LIB_INC) -Iinclude -Isrc/common src/lib/box/untar.c src/lib/error.c tests/fuzz/fuzz_untar.c \
	  -Wl,--wrap=openat,--wrap=mkdirat,--wrap=symlinkat,--wrap=unlinkat,--wrap=utimensat,--wrap=linkat \
	  -larchive -o $(BUILD)/fuzz/fuzz_untar
	# the CLI's sanitiser for guest bytes on a terminal (issue 11)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  -Iinclude src/cli/cli_text.c tests/fuzz/fuzz_text.c -o $(BUILD)/fuzz/fuzz_text
	# the network policy: DNS answers the shim reads, allow_net specs
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  $(LIB_INC) -Iinclude src/lib/net/netpolicy.c src/lib/error.c tests/fuzz/fuzz_dns.c \
	  -o $(BUILD)/fuzz/fuzz_dns
	# the qcow2 header reader (issue 12): the disk of an imported archive is hostile
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  $(LIB_INC) -Iinclude src/lib/disk/qcow2.c src/lib/error.c src/lib/util.c tests/fuzz/fuzz_qcow2.c \
	  -o $(BUILD)/fuzz/fuzz_qcow2
	# boxlite-runtime's config.json / process.json parser (issue 17)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  -Isrc/oci src/oci/spec.c tests/fuzz/fuzz_oci_config.c -ljansson -o $(BUILD)/fuzz/fuzz_oci_config
	# issue 11: the agent's copy-in reader (in the guest, on the host's tars), its calls that
	# change names held to the work directory by the harness
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  -Isrc/agent -Isrc/common src/agent/copy.c src/agent/util.c src/agent/identity.c \
	  src/agent/mounts.c src/agent/tunnel.c src/agent/trustca.c tests/fuzz/fuzz_agent_untar.c \
	  -Wl,--wrap=open,--wrap=mkdir,--wrap=symlink,--wrap=link,--wrap=unlink,--wrap=chmod,--wrap=utimensat \
	  -o $(BUILD)/fuzz/fuzz_agent_untar
	# the agent's /etc/passwd and /etc/group reader (the image's files are hostile)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  -Isrc/agent src/agent/passwd.c tests/fuzz/fuzz_passwd.c -o $(BUILD)/fuzz/fuzz_passwd
	# issue 11: QEMU's QMP replies as the shim reads them (QEMU is not a boundary under TCG)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  -Isrc/shim -Isrc/common $(LIB_INC) -Iinclude src/shim/qmp.c src/lib/util.c src/lib/error.c \
	  tests/fuzz/fuzz_qmp.c -o $(BUILD)/fuzz/fuzz_qmp
	# issue 15: the secrets proxy's request rewriter (guest bytes), on the real bl_secret code
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  -Isrc/shim -Isrc/common $(LIB_INC) -Iinclude src/shim/secrets_http.c src/lib/net/secrets.c \
	  src/lib/net/netpolicy.c src/lib/util.c src/lib/error.c tests/fuzz/fuzz_secrets.c \
	  -lhttp_parser -o $(BUILD)/fuzz/fuzz_secrets
	# issue 16: `boxlite serve`'s request decoders (bodies, query values, attach control frames)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  -Iinclude -Isrc/serve $$(pkg-config --cflags jansson) src/serve/decode.c \
	  tests/fuzz/fuzz_serve_decode.c -ljansson -o $(BUILD)/fuzz/fuzz_serve_decode
	# issue 11: docker-save / OCI-layout import, .boxlite archives, registries.json
	for t in $(FUZZ_LIB_TARGETS); do \
	  $(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer tests/fuzz/fuzz_$$t.c \
	    $(BUILD)/fuzz/libboxlite-fuzz.a $(FUZZ_LIBS) -o $(BUILD)/fuzz/fuzz_$$t || exit 1; \
	done

# The documented fuzz run: every target for FUZZ_SECONDS (default 60) seconds each, on a copy
# of its seed corpus (tests/fuzz/corpus_<name>; the protocol decoder's is tests/fuzz/corpus);
# FUZZ_TARGETS picks some. docs/testing.md lists them.
FUZZ_TARGETS ?= proto untar agent_untar passwd text dns qcow2 manifest reference layer import \
  boxarchive registries qmp oci_config secrets serve_decode
fuzz: fuzz-build
	for t in $(FUZZ_TARGETS); do \
	  c=tests/fuzz/corpus_$$t; [ $$t = proto ] && c=tests/fuzz/corpus; \
	  rm -rf $(BUILD)/fuzz/corpus_$$t && cp -r $$c $(BUILD)/fuzz/corpus_$$t && \
	  echo "== fuzz_$$t" && \
	  $(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus_$$t || exit 1; \
	done

# Fault injection (docs/testing.md): every counted call of every store operation fails in
# turn under build/tests/fault/boxlite-faulty; `make test` runs a spread of them.
fault: build
	BOXLITE_FAULT_POINTS=1000000 BOXLITE_FAULT_FORK_POINTS=1000000 BOXLITE_FAULT_SECONDS=3600 \
	  BOXLITE_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q $(PYTEST_ARGS) tests/integration/test_fault.py

unit: build
	meson test -C $(BUILD) --print-errorlogs

# tests/package installs the wheel on a bare Debian root (cached: tests/package/mkroot.sh)
test: build python wheel fuzz-build check-format check-abi
	BOXLITE_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -v tests $(PYTEST_ARGS)

# Every benchmark prints our figure beside a baseline measured in the same run.
BENCHES ?= boot lifecycle exec net pull
bench: build
	for b in $(BENCHES); do echo "== bench/$$b"; \
	  BOXLITE_BUILD=$(abspath $(BUILD)) ./bench/$$b || exit 1; done

clean:
	rm -rf $(BUILD)
