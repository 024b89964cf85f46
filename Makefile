# lakehouse: every target does its own set-up first (scripts/setup.sh is idempotent).
#   make run    set up, build, start the server on embedded defaults (127.0.0.1:3100)
#   make test   set up, build, run every test; then again under ASan + UBSan
#   make build  set up and build ./build/lakehouse
#   make bench  set up, build, run the benchmarks under bench/
#   make clean  remove build outputs

SHELL      := /bin/bash
BUILD      ?= build
BUILD_SAN  ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_GEN  := -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_RULE_MESSAGES=OFF
CTEST_ARGS ?= --output-on-failure

.PHONY: all setup build build-asan run test test-fast bench clean

all: build

setup:
	@scripts/setup.sh

$(BUILD)/Makefile: CMakeLists.txt | setup
	@cmake -S . -B $(BUILD) $(CMAKE_GEN) >/dev/null

$(BUILD_SAN)/Makefile: CMakeLists.txt | setup
	@cmake -S . -B $(BUILD_SAN) $(CMAKE_GEN) -DLH_SANITIZE=ON >/dev/null

# Compiler diagnostics still show; CMake's per-target progress lines do not.
QUIET_MAKE = $(MAKE) --no-print-directory -s -j$(JOBS) -C

build: setup $(BUILD)/Makefile
	@set -o pipefail; $(QUIET_MAKE) $(BUILD) 2>&1 | { grep -v '^\[...%\] Built target' || true; }

build-asan: setup $(BUILD_SAN)/Makefile
	@set -o pipefail; $(QUIET_MAKE) $(BUILD_SAN) 2>&1 | { grep -v '^\[...%\] Built target' || true; }

run: build
	./$(BUILD)/lakehouse serve $(if $(CONFIG),--config $(CONFIG))

test-fast: build
	cd $(BUILD) && ctest $(CTEST_ARGS) -j$(JOBS)

test: build build-asan
	@echo "== tests (release build)"
	cd $(BUILD) && ctest $(CTEST_ARGS) -j$(JOBS)
	@echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer)"
	cd $(BUILD_SAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_ARGS) -j$(JOBS)

bench: build
	@bench/run_all.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
