#!/usr/bin/env bash
# Run every benchmark and study, one after the other (the machine should be
# otherwise idle), and keep their machine-readable output.
#   bench/run_all.sh BUILD_DIR OUT_DIR [--quick] [--no-study]
set -euo pipefail
build=$(cd "${1:?build folder}" && pwd)
out=${2:?output folder}
shift 2
quick= study=1
for a in "$@"; do
    case "$a" in
    --quick) quick=1 ;;
    --no-study) study= ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
    esac
done
src=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-/usr/bin/python3}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# build/convrec is libtool's wrapper script (the command links the shared
# library), whose shell start-up would be timed too: run the real binary
# against the fresh library instead
export CONVREC_BIN="$build/.libs/convrec"
export LD_LIBRARY_PATH="$build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
(cd "$build" && make -s bench)
log() { echo "== $*" >&2; }
{
    echo "# machine: $(uname -m), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "# date: $(date -u +%F) commit: $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)"
} > "$out/machine.txt"
log bench_conv;   "$build/bench/bench_conv" | tee "$out/bench_conv.txt"
log bench_conv_scipy; "$py" "$src/bench/bench_conv_scipy.py" | tee "$out/bench_conv_scipy.txt"
log bench_step;   "$build/bench/bench_step" ${quick:+quick} | tee "$out/bench_step.txt"
log bench_filter_vs_conv; "$py" "$src/bench/bench_filter_vs_conv.py" | tee "$out/bench_filter_vs_conv.txt"
log bench_export_size; CONVREC_LIB="$build/.libs" PYTHONPATH="$src/python" "$py" "$src/bench/bench_export_size.py" | tee "$out/bench_export_size.txt"
log bench_export_fixed; CONVREC_LIB="$build/.libs" PYTHONPATH="$src/python" "$py" "$src/bench/bench_export_fixed.py" | tee "$out/bench_export_fixed.txt"
log bench_fit;    "$build/bench/bench_fit" | tee "$out/bench_fit.txt"
log bench_weighted; CONVREC_LIB="$build/.libs" PYTHONPATH="$src/python" OMP_NUM_THREADS=1 "$py" "$src/bench/bench_weighted.py" ${quick:+--quick} | tee "$out/bench_weighted.txt"
[ -z "$study" ] || log study_convergence; [ -z "$study" ] || "$py" "$src/bench/study_convergence.py" ${quick:+--quick} --out "$out/study" | tail -40 | tee "$out/study_summary.txt"
# the S4D network (needs torch and the shared data checkpoint); its compression
# study is long (about 40 minutes on 2 cores)
ck="$src/../shared/data/checkpoints/s4d_scifar.pth"
if "$py" -c 'import torch' 2>/dev/null && [ -f "$ck" ]; then
    export CONVREC_LIB="$build/.libs" PYTHONPATH="$src/python"
    log bench_s4d_stream; "$py" "$src/bench/bench_s4d_stream.py" "$ck" | tee "$out/bench_s4d_stream.txt"
    [ -z "$study" ] || log study_s4d_compress
    [ -z "$study" ] || "$py" "$src/bench/study_s4d_compress.py" --per-layer --json "$out/s4d_compress.json" "$ck" |
        tee "$out/s4d_compress.txt"
else
    log "bench_s4d_stream, study_s4d_compress: skipped (no torch or no $ck)"
fi
log "done: $out"
