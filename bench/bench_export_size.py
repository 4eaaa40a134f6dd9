#!/usr/bin/python3
"""Code size, state size and instructions per sample of the exported C filter
on emulated Cortex-M cores: `convrec export --format c` of random stable models
of conjugate pairs (C channels, order N each), in float32 for a Cortex-M4F
(qemu mps2-an386) and in Q31 / Q15 for a Cortex-M3 (qemu mps2-an385).

    CONVREC_BIN=build/convrec CONVREC_LIB=build/.libs PYTHONPATH=python \\
        /usr/bin/python3 bench/bench_export_size.py

text = code + constant coefficients of NAME.o (arm-none-eabi-gcc -O2,
arm-none-eabi-size); state = sizeof(NAME_state), which the caller owns.
Instructions are counted by qemu itself: -icount shift=0 makes the virtual
clock advance 1 ns per executed instruction, SysTick counts that clock (one
tick per 40 instructions at the boards' 25 MHz), and a loop of known length
calibrates the factor in the same run (tests/embedded/count.c: 16 blocks of
64 samples, so the per-call overhead is included). Instructions are not
cycles: on a Cortex-M4 a load or a multiply-accumulate takes 1-2 cycles,
a 64-bit SMLAL on the M3 3-7.
Prints key=value lines; a second part gives sizes only, for more shapes.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import convrec

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMB = os.path.join(SRC, "tests", "embedded")
CC, SIZE, QEMU = "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"
CPU = {"m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
       "m3": ["-mcpu=cortex-m3", "-mthumb"]}
MACHINE = {"m4f": "mps2-an386", "m3": "mps2-an385"}
WARN = ["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
# numeric format -> (core, sample type, bytes per state word, input scale of count.c)
FORMATS = {"float": ("m4f", "float", 4, "1.0"), "q31": ("m3", "int32_t", 4, "2147483648.0"),
           "q15": ("m3", "int16_t", 2, "32768.0")}


def model(rng, C, N, path):
    P = N // 2
    poles = rng.uniform(0.5, 0.99, (C, P)) * np.exp(1j * rng.uniform(0.1, 3.0, (C, P)))
    res = 0.05 * (rng.standard_normal((C, P)) + 1j * rng.standard_normal((C, P)))
    convrec.Model.from_modes(poles, res, d=0.1 * rng.standard_normal(C)).save(path)


def export(exe, m, out, numeric):
    args = [exe, "export", m, "--format", "c", "--name", "filt", "-o", out]
    if numeric == "double":
        args += ["--precision", "double"]
    elif numeric != "float":
        args += ["--numeric", numeric, "--max-error", "1"]  # speed, not accuracy, here
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def text_size(out, core):
    obj = os.path.join(out, "filt.o")
    subprocess.run([CC, *CPU[core], *WARN, "-c", os.path.join(out, "filt.c"), "-o", obj], check=True)
    return int(subprocess.run([SIZE, obj], capture_output=True, text=True,
                              check=True).stdout.splitlines()[1].split()[0])


def count(out, core, typ, scale):
    elf = os.path.join(out, "count.elf")
    subprocess.run([CC, *CPU[core], "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
                    '-DHDR="filt.h"', "-DNAME=filt", "-DUP=FILT", f"-DT={typ}", f"-DIN_SCALE={scale}",
                    "-I", out, "--specs=nano.specs", "--specs=rdimon.specs", "-nostartfiles",
                    "-T", os.path.join(EMB, "mps2.ld"), os.path.join(out, "filt.c"),
                    os.path.join(EMB, "count.c"), os.path.join(EMB, "startup.c"), "-o", elf], check=True)
    r = subprocess.run([QEMU, "-M", MACHINE[core], "-nographic", "-monitor", "none", "-serial", "none",
                        "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
                        "-kernel", elf], capture_output=True, text=True, check=True, timeout=120, cwd=out)
    v = dict(kv.split("=") for kv in r.stdout.split())
    per_tick = int(v["spin_insns"]) / int(v["spin_ticks"])
    return int(v["run_ticks"]) * per_tick / int(v["samples"]), per_tick


def state_bytes(out, word):
    h = open(os.path.join(out, "filt.h")).read()
    pairs = int(re.search(r"FILT_PAIRS (\d+)", h).group(1))
    reals = int(re.search(r"FILT_REALS (\d+)", h).group(1))
    return (2 * max(pairs, 1) + max(reals, 1)) * word


def main():
    for tool in (CC, QEMU):
        if shutil.which(tool) is None:
            print(f"bench=export_size skipped=1 reason=no_{tool}")
            return 0
    exe = os.environ.get("CONVREC_BIN", "./convrec")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        m = os.path.join(d, "m.safetensors")
        for C in (1, 8):
            for N in (8, 16, 32):
                model(rng, C, N, m)
                for numeric, (core, typ, word, scale) in FORMATS.items():
                    out = os.path.join(d, f"c{C}n{N}{numeric}")
                    export(exe, m, out, numeric)
                    text = text_size(out, core)
                    ips, per_tick = count(out, core, typ, scale)
                    print(f"bench=export_emu target=cortex-{core} machine={MACHINE[core]} numeric={numeric} "
                          f"C={C} N={N} text={text} state={state_bytes(out, word)} "
                          f"insns_per_sample={ips:.1f} insns_per_channel_sample={ips / C:.1f} "
                          f"insns_per_tick={per_tick:.3f}", flush=True)
        # sizes only, more shapes (float and double on the M4F)
        for C in (1, 8, 64):
            for N in (4, 16, 64):
                model(rng, C, N, m)
                for prec in ("float", "double"):
                    out = os.path.join(d, f"s{C}n{N}{prec}")
                    export(exe, m, out, prec)
                    print(f"bench=export_size target=cortex-m4f prec={prec} C={C} N={N} "
                          f"text={text_size(out, 'm4f')} "
                          f"state_bytes_per_channel={N * (4 if prec == 'float' else 8)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
