#!/usr/bin/env bash
# The main job on the bundled examples: fit Hyena-style filters with small
# recurrences, check them against convolution, and turn a loudspeaker-cabinet impulse
# response into an embedded IIR filter.  Usage: examples/demo.sh PATH/TO/convrec
set -euo pipefail
bin=${1:-build/convrec}
ex=$(dirname "$0")
out=${OUT:-out}
mkdir -p "$out"
run() { echo; echo "\$ convrec $*"; "$bin" "$@"; }

run hsv "$ex/hyena_filters.npy" -n 6
run fit "$ex/hyena_filters.npy" --order 16 -o "$out/hyena.safetensors"
run verify "$out/hyena.safetensors" "$ex/hyena_filters.npy" --steps 100000
echo "(The window objective fits k < L only: the model's response beyond L is free, so over long"
echo " inputs the recurrence differs from convolution by the length-L kernel by about err_infinite.)"
run fit "$ex/cabinet_ir.npy" --horizon infinite --tol 0.01 -o "$out/cabinet.safetensors"
run info "$out/cabinet.safetensors"
run export "$out/cabinet.safetensors" --format c --name cabinet -o "$out/cabinet_c"
echo; echo "wrote $out/hyena.safetensors, $out/cabinet.safetensors and $out/cabinet_c/cabinet.{h,c}"
