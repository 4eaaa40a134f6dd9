#!/bin/sh
# Remake the gallery (docs/gallery/README.md) with the project's own commands.
# Run from the source tree after building: docs/gallery/make.sh [BUILD]
# (BUILD defaults to build/). Needs the shared data in ../shared/data, the
# Python package importable by the command's interpreter (make install, or
# PYTHONPATH=python CONVREC_LIB=build/.libs) and matplotlib. Takes minutes.
set -eu
cd "$(dirname "$0")/../.."
B=${1:-build}
PATH="$PWD/$B:$PATH"
D=../shared/data
W=${GALLERY_WORK:-$B/gallery}
G=docs/gallery
mkdir -p "$W"
set -x
# 1. the shared S4D bank (512 trained kernels, L = 1024) at order 16
convrec fit $D/s4d_scifar/kernels.npy --order 16 -o "$W/s4d.safetensors" -q
convrec report "$W/s4d.safetensors" $D/s4d_scifar/kernels.npy -o "$W/s4d" --format png -q
# 2. the shared room impulse response (1 s at 44.1 kHz), infinite horizon, order 128
convrec fit $D/rir/rir_clap.npy --horizon infinite --order 128 -o "$W/rir.safetensors" -q
convrec report "$W/rir.safetensors" $D/rir/rir_clap.wav -o "$W/rir" --format png -q
# 3. the bundled Hyena-style bank (16 filters, L = 2048) at order 16
convrec fit examples/hyena_filters.npy --order 16 -o "$W/hyena.safetensors" -q
convrec report "$W/hyena.safetensors" examples/hyena_filters.npy -o "$W/hyena" --format png -q
# 4. error against order for the shared families (and the Hyena bank), infinite horizon
convrec study s4d=$D/s4d_scifar/kernels.npy ckconv=$D/ckconv_smnist/kernels.npy \
    rir=$D/rir/rir_clap.wav mor-build=$D/mor/build_L4096.npy mor-heat=$D/mor/heat-cont_L4096.npy \
    mor-beam=$D/mor/beam_L4096.npy mor-cdplayer=$D/mor/CDplayer_L4096.npy mor-iss1r=$D/mor/iss1R_L4096.npy \
    hyena=examples/hyena_filters.npy --channels ::64 --horizon infinite -o "$W/study" --format png
set +x
for r in s4d rir hyena; do
    cp "$W/$r/figures/channels.png" "$G/${r}_channels.png"
    for f in "$W/$r/figures"/channel[0-9]*.png; do
        cp "$f" "$G/${r}_$(basename "$f")"
    done
done
cp "$W/study/figures/study_hinf.png" "$G/study_hinf.png"
cp "$W/study/figures/study_time.png" "$G/study_time.png"
ls -l "$G"/*.png
