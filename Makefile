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
LIB_INC  = -Isrc/lib -Isrc/lib/state -Isrc/lib/image -Isrc/lib/box -Isrc/lib/snapshot -Isrc/lib/net -Isrc/lib/disk
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

fuzz-build: deps
	mkdir -p $(BUILD)/fuzz
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE -Isrc/common \
	  src/common/proto.c src/common/frameio.c tests/fuzz/fuzz_proto.c -o $(BUILD)/fuzz/fuzz_proto
	# images (issue 3): registry documents, references + WWW-Authenticate, layer tars → ext4
	for t in manifest reference layer; do \
	  $(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	    -Iinclude $(LIB_INC) $$(pkg-config --cflags ext2fs) tests/fuzz/fuzz_$$t.c \
	    src/lib/image/reference.c src/lib/image/manifest.c src/lib/image/registry.c \
	    src/lib/image/store.c src/lib/image/layer.c \
	    src/lib/image/ext4.c src/lib/error.c src/lib/util.c src/lib/bounds.c \
	    -lcurl -larchive -lext2fs -lcom_err -ljansson -lcrypto -o $(BUILD)/fuzz/fuzz_$$t || exit 1; \
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
	  $(LIB_INC) -Iinclude src/lib/disk/qcow2.c src/lib/error.c tests/fuzz/fuzz_qcow2.c \
	  -o $(BUILD)/fuzz/fuzz_qcow2
	# boxlite-runtime's config.json / process.json parser (issue 17)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -D_GNU_SOURCE \
	  -Isrc/oci src/oci/spec.c tests/fuzz/fuzz_oci_config.c -ljansson -o $(BUILD)/fuzz/fuzz_oci_config

# The documented fuzz run: the frame/payload decoder for FUZZ_SECONDS (default 60) seconds.
fuzz: fuzz-build
	rm -rf $(BUILD)/fuzz/corpus && cp -r tests/fuzz/corpus $(BUILD)/fuzz/corpus
	$(BUILD)/fuzz/fuzz_proto -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	  $(BUILD)/fuzz/corpus

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
