#!/usr/bin/env bash
# Build the libFuzzer harnesses and run each one for SECONDS on its corpus.
#
#   fuzz/run.sh [SECONDS [BUILD_DIR [HARNESS...]]]
#
# SECONDS per harness (default 20; a campaign: fuzz/run.sh 1800). BUILD_DIR
# (default build-fuzz) is configured with CC=clang --enable-fuzz when it has
# no Makefile. HARNESS: npy, model, safetensors, audio, cli (default: all), one after
# the other (one core each). cli runs the command itself, its output closed
# (-close_fd_mask=3).
#
# Each harness starts from the kept seeds (fuzz/corpus/NAME, made by
# fuzz/make_corpus.py, read only) and BUILD_DIR/fuzz-corpus/NAME, where the
# inputs it finds are kept for the next run. A crash, leak, timeout or
# failed CHECK stops that harness, leaves the reproducer in
# BUILD_DIR/fuzz-artifacts/ and makes the script exit 1 after the others
# ran; reproduce with BUILD_DIR/fuzz/fuzz_NAME ARTIFACT.
#
# Results: BUILD_DIR/fuzz-results.txt (or $FUZZ_RESULTS, so that several
# runs can go side by side on one build, one harness each), one line per
# harness (format in fuzz/README.md), also printed at the end.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
build=${2:-$src/build-fuzz}
shift $(( $# < 2 ? $# : 2 ))
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(npy model safetensors audio cli)
case $build in /*) ;; *) build=$PWD/$build ;; esac

if [ ! -f "$build/Makefile" ]; then
    [ -x "$src/configure" ] || (cd "$src" && autoreconf -fi >/dev/null)
    mkdir -p "$build"
    (cd "$build" && "$src/configure" -q CC=clang --enable-fuzz)
fi
make -C "$build" -s -j"$(nproc)" fuzz

export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# libomp's thread pool is never freed (fuzz/lsan.supp)
export LSAN_OPTIONS="suppressions=$src/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
mkdir -p "$build/fuzz-artifacts"
results=${FUZZ_RESULTS:-$build/fuzz-results.txt}
: >"$results"
fail=0
for h in "${harnesses[@]}"; do
    bin=$build/fuzz/fuzz_$h
    work=$build/fuzz-corpus/$h
    log=$build/fuzz-$h.log
    dict=$src/fuzz/$h.dict
    mkdir -p "$work"
    echo "== fuzz_$h: $secs s (log: $log)"
    rc=0
    extra=()
    [ "$h" = cli ] && extra=(-close_fd_mask=3)
    "$bin" "${extra[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
        -print_final_stats=1 -dict="$dict" -artifact_prefix="$build/fuzz-artifacts/$h-" \
        "$work" "$src/fuzz/corpus/$h" >"$log" 2>&1 || rc=$?
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([^ ]*\).*/\1/p' <<<"$last")
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    status=ok
    if [ $rc -ne 0 ]; then status=crash; fail=1; fi
    line="fuzz_$h status=$status seconds=$secs runs=$(stat number_of_executed_units) exec_per_s=$(stat average_exec_per_sec) cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?} new_units=$(stat new_units_added) peak_rss_mb=$(stat peak_rss_mb) artifact=${artifact:--}"
    echo "$line" >>"$results"
    if [ $status != ok ]; then
        echo "fuzz_$h FAILED (exit $rc); last lines of $log:"
        grep -E 'ERROR|CHECK failed|SUMMARY|Test unit written' "$log" | tail -n 8 || tail -n 20 "$log"
        echo "reproduce: $bin ${artifact:-ARTIFACT}"
    fi
done
cat "$results"
exit $fail
