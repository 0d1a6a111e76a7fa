# Thin wrapper around CMake. The two commands a new machine needs:
#   make test    build and run the test suite (release build)
#   make bench   build and run the workload suite, print the table
#   make bench-deps  install every benchmark peer (Debian/Ubuntu packages)
# Others: make [all], make debug|asan|tsan (build only), make test-debug,
# make test-asan, make test-tsan, make test-valgrind (the unit tests of the
# debug build under valgrind's memcheck), make lint (cppcheck and clang-tidy),
# make install PREFIX=/some/dir, make clean.
#   make fuzz FUZZ_SECONDS=N  the API fuzzer (clang, libFuzzer) for N seconds
#   make soak SOAK_SECONDS=N  a mixed load for N seconds; RSS and threads must stay flat

PREFIX     ?= /usr/local
BENCH_ARGS ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?=
FUZZ_SECONDS ?= 60
FUZZ_ARGS    ?=
SOAK_SECONDS ?= 60
SOAK_ARGS    ?=
# The peers of the benchmark suite (docs/benchmarks.md); each is optional.
BENCH_DEPS := pkg-config g++ libglib2.0-dev libuv1-dev libtbb-dev golang-go \
              libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev gnuplot-nox
SUDO       ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# build/<type> for each CMake build type.
define configure
	@mkdir -p build/$(1)
	@cd build/$(1) && cmake -S ../.. -B . -DCMAKE_BUILD_TYPE=$(2) \
	    -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(3) >/dev/null
endef

.PHONY: all release debug asan tsan test test-release test-debug test-asan test-tsan \
        test-valgrind lint bench bench-deps install clean fuzz soak soak-asan

all: release

cmake_type_release := Release
cmake_type_debug   := Debug
cmake_type_asan    := Asan
cmake_type_tsan    := Tsan
# TSan needs a fixed address-space layout on newer kernels; setarch -R turns off
# randomisation for the test processes only.
run_prefix_tsan    := setarch $$(uname -m) -R

release debug asan tsan:
	$(call configure,$@,$(cmake_type_$@))
	@cmake --build build/$@ -j $(JOBS)

test: test-release

test-release test-debug test-asan test-tsan: test-%: %
	cd build/$* && $(run_prefix_$*) ctest --output-on-failure $(CTEST_ARGS)

test-valgrind: debug
	bash tests/valgrind.sh build/debug

# Static analysis through the compile database of a debug configuration.
lint:
	$(call configure,lint,Debug,-DCMAKE_EXPORT_COMPILE_COMMANDS=ON)
	bash tools/lint.sh build/lint $(JOBS)

bench: release
	./build/release/bench/formica-bench --csv bench/results/latest.csv $(BENCH_ARGS)

# CMake caches what it did not find: the configure after an install must look
# again, so the caches of existing build folders go (the objects stay).
bench-deps:
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $(BENCH_DEPS)
	rm -f build/*/CMakeCache.txt

# The fuzzer runs on the checked-in corpus (read only) and writes what it
# finds to build/fuzz/corpus; a crash stops it with a non-zero exit and the
# input that caused it in build/fuzz/crash-*.
fuzz:
	@command -v clang >/dev/null || { echo "make fuzz needs clang and libclang-rt-dev"; exit 1; }
	@mkdir -p build/fuzz/corpus
	@cd build/fuzz && CC=clang cmake -S ../.. -B . -DCMAKE_BUILD_TYPE=Fuzz -DFM_BUILD_FUZZ=ON \
	    -DFM_BUILD_TESTS=OFF -DFM_BUILD_BENCH=OFF -DFM_BUILD_EXAMPLES=OFF >/dev/null
	@cmake --build build/fuzz -j $(JOBS)
	./build/fuzz/tests/fuzz/fuzz_api -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=60 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/ $(FUZZ_ARGS) \
	    build/fuzz/corpus tests/fuzz/corpus

soak: release
	./build/release/tests/soak --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

soak-asan: asan
	./build/asan/tests/soak --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

install: release
	cmake --install build/release --prefix $(PREFIX)

clean:
	rm -rf build
