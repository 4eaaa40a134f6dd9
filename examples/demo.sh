#!/usr/bin/env bash
# The main job on the bundled examples: fit Hyena-style filters with small
# recurrences, check them against convolution, and turn a room-like impulse
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
run fit "$ex/room_ir.npy" --horizon infinite --tol 0.05 -o "$out/room.safetensors"
run info "$out/room.safetensors"
run export "$out/room.safetensors" --format c --name room -o "$out/room_c"
echo; echo "wrote $out/hyena.safetensors, $out/room.safetensors and $out/room_c/room.{h,c}"
