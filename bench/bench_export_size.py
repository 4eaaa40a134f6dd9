#!/usr/bin/python3
"""Code and data size of the exported C filter on a Cortex-M4F, per channel
count C and order N: `convrec export --format c` of a random stable model,
compiled with arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard
-mfpu=fpv4-sp-d16 -O2 and measured with arm-none-eabi-size.

    CONVREC_BIN=build/convrec CONVREC_LIB=build/.libs PYTHONPATH=python /usr/bin/python3 bench/bench_export_size.py
Prints key=value lines (text = code + constant coefficients, bss = state).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import convrec

CC, SIZE = "arm-none-eabi-gcc", "arm-none-eabi-size"
FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-O2", "-std=c99",
         "-Wall", "-Wextra", "-Werror", "-pedantic", "-c"]


def main():
    if shutil.which(CC) is None:
        print("bench=export_size skipped=1 reason=no_arm-none-eabi-gcc")
        return 0
    exe = os.environ.get("CONVREC_BIN", "./convrec")
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        for C in (1, 8, 64):
            for N in (4, 16, 64):
                P = N // 2
                poles = rng.uniform(0.5, 0.99, (C, P)) * np.exp(1j * rng.uniform(0.1, 3.0, (C, P)))
                res = rng.standard_normal((C, P)) + 1j * rng.standard_normal((C, P))
                m = os.path.join(d, "m.safetensors")
                convrec.Model.from_modes(poles, res, d=rng.standard_normal(C)).save(m)
                for prec in ("float", "double"):
                    out = os.path.join(d, f"c{C}n{N}{prec}")
                    subprocess.run([exe, "export", m, "--format", "c", "--name", "filt", "--precision", prec,
                                    "-o", out], check=True, stdout=subprocess.DEVNULL)
                    obj = os.path.join(out, "filt.o")
                    subprocess.run([CC, *FLAGS, os.path.join(out, "filt.c"), "-o", obj], check=True)
                    text, data, bss = subprocess.run([SIZE, obj], capture_output=True, text=True,
                                                     check=True).stdout.splitlines()[1].split()[:3]
                    print(f"bench=export_size target=cortex-m4f prec={prec} C={C} N={N} text={text} "
                          f"data={data} bss={bss} state_bytes_per_channel={N * (4 if prec == 'float' else 8)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
