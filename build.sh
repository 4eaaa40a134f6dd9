#!/usr/bin/env bash
# convrec: install what is missing (Debian), build, then either run the
# demo on the bundled example or run every test.
#
#   ./build.sh demo    install, build build/, convert the bundled example kernels
#   ./build.sh check   install, build, run all tests, in these stages:
#       main   build/        gcc, --enable-native: make check
#       asan   build-asan/   gcc, AddressSanitizer + UndefinedBehaviorSanitizer
#                            (+ LeakSanitizer): the C tests
#       clang  build-clang/  clang, --enable-native: make check
#       tsan   build-tsan/   clang, ThreadSanitizer: the threading test
#       fuzz   build-fuzz/   clang, libFuzzer + ASan + UBSan: every harness in
#                            fuzz/ for FUZZ_SECONDS (default 20) on its corpus
#
# The two modes work in either order, any number of times: build/ is
# configured the same way by both, and reconfigured whenever what configure
# saw has changed (its arguments, the compiler and pkg-config settings, the
# installed versions of the packages below) or lacks what `check` needs.
# CHECK_STAGES="main asan" runs only some stages (default: all of them).
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-demo}

# what the library and the command need
BUILD_PKGS="gcc make autoconf automake libtool pkg-config libfftw3-dev libopenblas-dev
liblapacke-dev libcjson-dev libsndfile1-dev python3-numpy help2man"
# what the tests need besides: cmocka, scipy/pytest for the python tests,
# pip/setuptools/venv to install the package for them (as make install does),
# torch for convrec.torch, the Cortex-M cross compiler that the export test
# builds for, newlib (semihosting stdio) and qemu for the exported filters on
# emulated Cortex-M3 / M4F, clang with its sanitizer and libFuzzer
# runtimes and its OpenMP (libomp), PIL and scikit-image's data folder for
# the S4D compression study's natural photos (with matplotlib's and scipy's),
# chromium (headless) for the report pages
TEST_PKGS="libcmocka-dev python3-scipy python3-pytest python3-matplotlib gcc-arm-none-eabi
libnewlib-arm-none-eabi qemu-system-arm python3-pip python3-setuptools python3-venv python3-torch
clang libclang-rt-dev libomp-dev python3-pil python3-skimage
chromium"
CHECK_STAGES=${CHECK_STAGES:-main asan clang tsan fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

install_deps() { # $@ = packages
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing: ${missing[*]}"
    local sudo=
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Everything configure's result depends on besides the source tree: its
# arguments, the environment it reads, and the packages installed. When this
# changes, the folder is configured again. (Defect 6: `demo` configured
# build/ before cmocka was installed and `check` reused that configuration,
# so no test linked.)
config_stamp() { # $@ = configure arguments
    printf 'configure %s\n' "$*"
    local v
    for v in CC CFLAGS CPPFLAGS LDFLAGS LIBS PKG_CONFIG PKG_CONFIG_PATH PKG_CONFIG_LIBDIR PYTHON; do
        printf '%s=%s\n' "$v" "${!v-}"
    done
    # shellcheck disable=SC2086
    dpkg-query -W -f='${Package} ${Version} ${Status}\n' $BUILD_PKGS $TEST_PKGS 2>/dev/null || true
}

# configure $dir unless it is configured with exactly this stamp
configure_dir() { # $1 = build folder, rest = configure arguments
    local dir=$1; shift
    local want have=
    want=$(config_stamp "$@")
    [ -f "$dir/.config-stamp" ] && have=$(cat "$dir/.config-stamp")
    if [ -f "$dir/Makefile" ] && [ "$want" = "$have" ]; then return 0; fi
    echo "== configuring $dir: ${*:-(defaults)}"
    mkdir -p "$dir"
    rm -f "$dir/.config-stamp"
    (cd "$dir" && ../configure -q "$@")
    printf '%s\n' "$want" >"$dir/.config-stamp"
}

build() { # $1 = build folder, rest = configure arguments
    local dir=$1
    [ -x configure ] || autoreconf -fi >/dev/null
    configure_dir "$@"
    make -C "$dir" -s -j"$(nproc)"
}

# `check` needs cmocka in build/: if the configuration lacks it (configured
# by hand, or before it was installed), configure again, once.
need_cmocka() { # $1 = build folder, rest = configure arguments
    local dir=$1
    grep -q '^HAVE_CMOCKA = yes' "$dir/Makefile" && return 0
    rm -f "$dir/.config-stamp"
    configure_dir "$@"
    grep -q '^HAVE_CMOCKA = yes' "$dir/Makefile" && return 0
    echo "build.sh: configure in $dir does not find cmocka (Debian: apt-get install libcmocka-dev)" >&2
    exit 1
}

has_stage() { [[ " $CHECK_STAGES " == *" $1 "* ]]; }
t_stage=$SECONDS
stage_done() { echo "== stage $1: $((SECONDS - t_stage)) s"; t_stage=$SECONDS; }

case "$mode" in
demo)
    install_deps $BUILD_PKGS
    build build --enable-native
    ./examples/demo.sh build/convrec
    ;;
check)
    install_deps $BUILD_PKGS $TEST_PKGS
    logs=()
    t_stage=$SECONDS
    if has_stage main; then
        build build --enable-native
        need_cmocka build --enable-native
        make -C build -s -j"$(nproc)" check
        logs+=(build/test-suite.log)
        stage_done main
    fi
    if has_stage asan; then
        # the C test suite again under AddressSanitizer + UndefinedBehaviorSanitizer
        build build-asan --enable-sanitizers
        ASAN_OPTIONS=detect_leaks=1 CONVREC_SKIP_PYTHON=1 make -C build-asan -s -j"$(nproc)" check
        logs+=(build-asan/test-suite.log)
        stage_done asan
    fi
    if has_stage clang; then
        # the whole suite built by clang (defect 7: clang did not build convrec)
        build build-clang CC=clang --enable-native
        # the numerical tests marked slow ran in the main stage already
        PYTEST_ADDOPTS='-m "not slow"' make -C build-clang -s -j"$(nproc)" check
        logs+=(build-clang/test-suite.log)
        stage_done clang
    fi
    if has_stage tsan; then
        # models shared by threads, fits in parallel, under ThreadSanitizer
        [ -x configure ] || autoreconf -fi >/dev/null
        configure_dir build-tsan CC=clang --enable-tsan
        # clang's libomp tells TSan about OpenMP's synchronisation (Archer);
        # OpenBLAS's thread pool cannot, so it stays off (tests/test_threads.c)
        OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS="ignore_noninstrumented_modules=1 ${TSAN_OPTIONS-}" \
            make -C build-tsan -s -j"$(nproc)" check TESTS=tests/test_threads check_PROGRAMS=tests/test_threads
        logs+=(build-tsan/test-suite.log)
        stage_done tsan
    fi
    if has_stage fuzz; then
        # every libFuzzer harness for FUZZ_SECONDS on the kept corpus; a crash
        # fails and leaves its reproducer in build-fuzz/fuzz-artifacts/
        [ -x configure ] || autoreconf -fi >/dev/null
        configure_dir build-fuzz CC=clang --enable-fuzz
        fuzz/run.sh "$FUZZ_SECONDS" build-fuzz
        stage_done fuzz
    fi
    # one closing line over all runs, counted from automake's summaries
    count() { awk -v k="# $1:" '$1" "$2 == k {n += $3} END {print n + 0}' "${logs[@]}" /dev/null; }
    echo "tests: $(count PASS) passed, $(( $(count FAIL) + $(count ERROR) )) failed, $(count SKIP) skipped"
    ;;
*)
    echo "usage: ./build.sh demo|check" >&2
    exit 2
    ;;
esac
