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

echo "== export the weighted model as C: float (Cortex-M4F) and Q31 fixed point (Cortex-M3)"
"$convrec" export "$tmp/octave.safetensors" --format c --name room -o "$tmp/float"
"$convrec" export "$tmp/octave.safetensors" --format c --name room --numeric q31 -o "$tmp/q31"
wc -c "$tmp/float/room.c" "$tmp/q31/room.c" | awk '$2 != "total" {print "   ", $1, "bytes of C:", $2}'

# Both filters on emulated cores (qemu-system-arm, semihosting), against a
# host build of the same C, with the drivers of tests/embedded (which
# `make check` runs on this response too: tests/embedded/test_emu).
emb=$here/../tests/embedded
if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null && [ -f "$emb/driver.c" ]; then
    for v in float q31; do
        d=$tmp/$v
        case $v in
        float) ty=float cpu="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16" board=mps2-an386 ;;
        q31) ty=int32_t cpu="-mcpu=cortex-m3 -mthumb" board=mps2-an385 ;;
        esac
        # 1 s of the test signal's left channel, in blocks of 256 (driver.c's in.bin)
        python3 - "$tmp/in.wav" "$d/in.bin" "$v" <<'PYEOF'
import struct, sys, wave
w = wave.open(sys.argv[1]); n = w.getframerate(); raw = w.readframes(n)
x = [struct.unpack_from("<h", raw, 4 * t)[0] for t in range(n)]
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<II", n, 256))
    f.write(struct.pack(f"<{n}f", *(s / 32768 for s in x)) if sys.argv[3] == "float"
            else struct.pack(f"<{n}i", *(s * 65536 for s in x)))
PYEOF
        flags="-std=c99 -O2 -DHDR=\"room.h\" -DNAME=room -DUP=ROOM -DT=$ty -I."
        (cd "$d" && cc $flags -o host room.c "$emb/driver.c" && ./host && mv out.bin host.bin &&
            arm-none-eabi-gcc $cpu $flags --specs=nano.specs --specs=rdimon.specs -nostartfiles \
                -T "$emb/mps2.ld" -o emu.elf room.c "$emb/driver.c" "$emb/startup.c" &&
            timeout 120 qemu-system-arm -M $board -nographic -monitor none -serial none \
                -semihosting-config enable=on,target=native -kernel emu.elf)
        python3 - "$d/host.bin" "$d/out.bin" "$v" "$board" <<'PYEOF'
import math, struct, sys
a, b = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
fmt = "f" if sys.argv[3] == "float" else "i"
x, y = struct.unpack(f"<{len(a) // 4}{fmt}", a), struct.unpack(f"<{len(b) // 4}{fmt}", b)
same = sum(p == q for p, q in zip(x, y))
err = math.sqrt(sum((p - q) ** 2 for p, q in zip(x, y)) / max(sum(p * p for p in x), 1e-300))
print(f"    {sys.argv[3]} on {sys.argv[4]}: {len(y)} samples, {same} bit-identical to the host build, "
      f"relative difference {err:.2e}")
PYEOF
    done
else
    echo "    (gcc-arm-none-eabi or qemu-system-arm missing: the emulated-core step is skipped)"
fi
