#!/usr/bin/env bash
# convrec: install what is missing (Debian), build, then either run the
# demo on the bundled example or run every test.
#
#   ./build.sh demo    install, build, convert the bundled example kernels
#   ./build.sh check   install, build, run all tests (also under ASan+UBSan)
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-demo}

# what the library and the command need
BUILD_PKGS="gcc make autoconf automake libtool pkg-config libfftw3-dev libopenblas-dev
liblapacke-dev libcjson-dev python3-numpy help2man"
# what the tests need besides: cmocka, scipy/pytest for the python tests,
# pip/setuptools/venv to install the package for them (as make install does),
# torch for convrec.torch, the Cortex-M cross compiler that the export test
# builds for, newlib (semihosting stdio) and qemu for the exported filters on
# emulated Cortex-M3 / M4F, chromium (headless) for the report pages
TEST_PKGS="libcmocka-dev python3-scipy python3-pytest python3-matplotlib gcc-arm-none-eabi
libnewlib-arm-none-eabi qemu-system-arm python3-pip python3-setuptools python3-venv python3-torch
chromium"

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

build() { # $1 = build folder, rest = configure options
    local dir=$1; shift
    [ -x configure ] || autoreconf -fi >/dev/null
    mkdir -p "$dir"
    (cd "$dir" && { [ -f Makefile ] || ../configure -q "$@"; } && make -s -j"$(nproc)")
}

case "$mode" in
demo)
    install_deps $BUILD_PKGS
    build build --enable-native
    ./examples/demo.sh build/convrec
    ;;
check)
    install_deps $BUILD_PKGS $TEST_PKGS
    build build --enable-native
    (cd build && make -s -j"$(nproc)" check)
    # the C test suite again under AddressSanitizer + UndefinedBehaviorSanitizer
    build build-asan --enable-sanitizers
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 CONVREC_SKIP_PYTHON=1 make -s -j"$(nproc)" check)
    # one closing line over both runs, counted from automake's summaries
    count() { awk -v k="# $1:" '$1" "$2 == k {n += $3} END {print n + 0}' build/test-suite.log build-asan/test-suite.log; }
    echo "tests: $(count PASS) passed, $(( $(count FAIL) + $(count ERROR) )) failed, $(count SKIP) skipped"
    ;;
*)
    echo "usage: ./build.sh demo|check" >&2
    exit 2
    ;;
esac
