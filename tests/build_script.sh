#!/usr/bin/env bash
# The README's two commands, `./build.sh demo` and `./build.sh check`, in
# either order and repeatedly, each order in its own fresh clone (defect 6:
# demo configured build/ without cmocka and check reused that configuration,
# so every C test failed to link).
#
# A newcomer's machine has cmocka only after `check` installed it. This
# machine has it already, so the demo step here runs with a pkg-config that
# does not know cmocka: build/ gets configured exactly as on that fresh
# machine, and the next `check` must notice and configure again.
#
# Costly (two clones, two builds, three `make check` runs): run by .ci/run,
# or by hand: tests/build_script.sh [SOURCE_REPO]. `check` runs only its
# `main` stage (build/) here: the other stages use folders demo never
# touches. The clones take the tested tree from the source repository's
# HEAD plus its uncommitted changes to tracked files (git stash create).
set -euo pipefail
src=$(cd "${1:-$(dirname "$0")/..}" && git rev-parse --show-toplevel)
rev=$(git -C "$src" stash create)
rev=${rev:-$(git -C "$src" rev-parse HEAD)}
tmp=$(mktemp -d /tmp/convrec-build-script.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/bin"
cat >"$tmp/bin/pkg-config" <<'EOF'
#!/bin/sh
# pkg-config as on a machine without libcmocka-dev
for a in "$@"; do case $a in cmocka*) exit 1 ;; esac; done
exec /usr/bin/pkg-config "$@"
EOF
chmod +x "$tmp/bin/pkg-config"

fail=0
step() { # $1 = clone, $2 = mode, rest = environment
    local dir=$1 mode=$2; shift 2
    echo "== $(basename "$dir"): ./build.sh $mode $*"
    if ! (cd "$dir" && env "$@" CHECK_STAGES=main ./build.sh "$mode" >"$dir.$mode.log" 2>&1); then
        echo "FAIL: ./build.sh $mode in $(basename "$dir") (last lines of its log):"
        tail -n 20 "$dir.$mode.log"
        fail=1
        return 1
    fi
    # check must have run the C tests (not skipped them all)
    if [ "$mode" = check ] && ! grep -q '^PASS: tests/test_npy' "$dir.$mode.log"; then
        echo "FAIL: ./build.sh check in $(basename "$dir") ran no C test"
        fail=1
        return 1
    fi
}

clone() { # $1 = name
    git clone -q --shared --no-checkout "$src" "$tmp/$1"
    git -C "$tmp/$1" checkout -q --detach "$rev"
}

clone demo-first
step "$tmp/demo-first" demo PKG_CONFIG="$tmp/bin/pkg-config" &&
    step "$tmp/demo-first" check &&
    step "$tmp/demo-first" demo || true

clone check-first
step "$tmp/check-first" check &&
    step "$tmp/check-first" demo &&
    step "$tmp/check-first" check || true

if [ $fail -ne 0 ]; then echo "build script test: FAILED"; exit 1; fi
echo "build script test: demo/check in both orders: ok"
