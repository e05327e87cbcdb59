# Thin wrapper over CMake: every target installs what it needs first.
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps test test-asan test-tsan demo bench fuzz image install deb clean

all: $(BUILD)/creto

$(BUILD)/creto: FORCE
	@scripts/deps.sh build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

test:
	@scripts/deps.sh test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCRETO_TESTS=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Same tests, built with clang under AddressSanitizer + UndefinedBehaviorSanitizer.
test-asan:
	@scripts/deps.sh all
	@CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCRETO_TESTS=ON -DCRETO_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# The unit tests that run threads (hashing pool, HSM session pool, ML-DSA
# per-thread cache, NHI resolver and cache), under ThreadSanitizer.
TSAN_TESTS = test_audit test_hash test_hash_mapwin test_hsm test_hsm_failover test_mldsa test_nhi
empty :=
space := $(empty) $(empty)
test-tsan:
	@scripts/deps.sh all
	@CC=clang cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCRETO_TESTS=ON -DCRETO_SANITIZE_THREAD=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS) --target $(TSAN_TESTS)
	@cd $(TSAN_BUILD) && ctest --output-on-failure -j $(JOBS) -R '^unit/($(subst $(space),|,$(TSAN_TESTS)))$$'

demo: all
	@scripts/deps.sh test
	@demo/run.sh $(BUILD)/creto

bench: all
	@scripts/deps.sh bench
	@for b in bench/*.sh; do echo "== $$b"; $$b $(BUILD)/creto || exit 1; done

# Each libFuzzer target runs for FUZZ_SECONDS (default 60) from its seed corpus.
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/deps.sh fuzz
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCRETO_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The OCI image of creto (deploy/image/build.sh, buildah): $(BUILD)/creto-image.tar
image: all
	@deploy/image/build.sh $(BUILD)/creto $(BUILD)/creto-image.tar $$(sed -n 's/^project(creto-airgap VERSION \([^ )]*\).*/\1/p' CMakeLists.txt)

# `make install` (PREFIX, DESTDIR): the program, libcreto.a + headers +
# creto.pc, man pages, bash completion, /etc example, units (docs/install.md).
PREFIX ?= /usr/local
DESTDIR ?=
install:
	@scripts/deps.sh build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# The Debian packages, lintian, and the runtime .debs to carry through the
# diode: $(DEB_OUT)/ (scripts/deb-build.sh).
DEB_OUT ?= $(BUILD)/deb
deb:
	@scripts/deb-build.sh $(DEB_OUT)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)

FORCE:
