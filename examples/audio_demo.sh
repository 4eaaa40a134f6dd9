#!/bin/sh
# Audio with convrec: the shared room response (a hand clap, 44.1 kHz WAV)
# fitted with and without octave weighting at the same order, a WAV file
# filtered through the weighted model, and the figures of both.
#
#   examples/audio_demo.sh [CONVREC] [ORDER]     (default build/convrec, 32)
#
# Reads ../shared/data/rir/rir_clap.wav beside the source tree and skips
# (exit 0) when the shared data folder is absent; nothing is copied into
# the repository. Python 3 (standard library only) writes the test signal.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
convrec=${1:-$here/../build/convrec}
order=${2:-32}
ir=${CONVREC_DATA:-$here/../../shared/data}/rir/rir_clap.wav
if [ ! -f "$ir" ]; then
    echo "audio_demo: skipped: $ir not found (the shared data folder is absent)"
    exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/convrec-audio.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "== fit $ir at order $order, unweighted and --weight octave (infinite horizon)"
"$convrec" fit "$ir" -o "$tmp/plain.safetensors" --order "$order" --horizon infinite -q
"$convrec" fit "$ir" -o "$tmp/octave.safetensors" --order "$order" --horizon infinite --weight octave -q
for m in plain octave; do
    echo "-- $m"
    "$convrec" info "$tmp/$m.safetensors" | grep -E "l2 error|sample rate|band error"
done

echo "== a 10 s stereo test signal (pink-ish noise bursts and a sweep, 16-bit WAV)"
python3 - "$tmp/in.wav" <<'EOF'
import math, random, struct, sys, wave
rate, T = 44100, 10 * 44100
random.seed(1)
w = wave.open(sys.argv[1], "wb")
w.setnchannels(2); w.setsampwidth(2); w.setframerate(rate)
frames, b = bytearray(), 0.0
for t in range(T):
    b = 0.97 * b + 0.03 * random.gauss(0, 1)            # low-passed noise
    burst = b * (1.0 if (t // 11025) % 2 == 0 else 0.0)
    # log sweep 40 Hz .. 20 kHz
    sweep = 0.2 * math.sin(2 * math.pi * 40.0 * T / rate / math.log(500.0) * ((20000.0 / 40.0) ** (t / T) - 1))
    for x in (0.25 * burst + sweep, 0.25 * burst - sweep):
        frames += struct.pack("<h", max(-32768, min(32767, int(round(x * 32767)))))
w.writeframes(bytes(frames)); w.close()
EOF

echo "== filter it through the weighted model (float WAV out) and through the real response (FFT convolution)"
"$convrec" filter "$tmp/octave.safetensors" "$tmp/in.wav" -o "$tmp/out.wav"
"$convrec" conv "$ir" "$tmp/in.wav" -o "$tmp/ref.wav"
ls -l "$tmp/in.wav" "$tmp/out.wav" "$tmp/ref.wav" | awk '{print "   ", $5, $NF}'

echo "== verify both models against the measured response (streamed, 1 s of noise)"
for m in plain octave; do
    echo "-- $m"
    "$convrec" verify "$tmp/$m.safetensors" "$ir" --steps 44100 | sed -n '2p'
done
