#!/usr/bin/python3
"""Accuracy of the exported C filter in Q31, Q15 and float32 against the
double model, on realistic models: the shared room impulse response
(../shared/data/rir/rir_clap.npy, fitted at order 64, --horizon infinite) and
the bundled cabinet response (examples/cabinet_ir.npy, order 32).

    CONVREC_BIN=build/convrec CONVREC_LIB=build/.libs PYTHONPATH=python \\
        /usr/bin/python3 bench/bench_export_fixed.py

Signals (10^6 samples each, 44.1 kHz): white noise at -6 dBFS (uniform, peak
1/2) and a music-like signal (chords of harmonic tones with attack/decay
envelopes, peak -6 dBFS), both deterministic. Each export is compiled for the
host (the same C that runs on the Cortex-M3 bit for bit, see
tests/embedded/test_emu.c) and run over the signal; SNR = signal / error
power of the output against the double recurrence of the model on the same
(quantised) input. "predicted" is what the export computed, at full-scale
white input (noise 6 dB higher at -6 dBFS). An export refused at the default
budget (Q15 of the cabinet) is measured with --max-error inf to show why.
Prints key=value lines.
"""
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

import convrec

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMB = os.path.join(SRC, "tests", "embedded")
FS = 44100
T = 1_000_000
BLOCK = 1000


def music(n, rng):
    """Chords of harmonic tones (8 partials, 1/k amplitudes, random phases),
    a new chord every 0.25 s with an exponential attack/decay envelope."""
    t = np.arange(n) / FS
    y = np.zeros(n)
    step = FS // 4
    notes = 220.0 * 2 ** (np.array([0, 3, 4, 7, 9, 12, 15, 16, 19]) / 12)
    for s0 in range(0, n, step):
        seg = slice(s0, min(n, s0 + 2 * step))  # each chord rings into the next
        tt = t[seg] - t[s0]
        env = (1 - np.exp(-tt / 0.005)) * np.exp(-tt / 0.15)
        for f0 in rng.choice(notes, 3, replace=False):
            for k in range(1, 9):
                if k * f0 < FS / 2:
                    y[seg] += env * np.sin(2 * np.pi * k * f0 * tt + rng.uniform(0, 2 * np.pi)) / k
    return 0.5 * y / np.abs(y).max()


def build(out, typ):
    exe = os.path.join(out, "drv")
    subprocess.run(["cc", "-std=c99", "-O2", '-DHDR="filt.h"', "-DNAME=filt", "-DUP=FILT", f"-DT={typ}",
                    "-DBMAX=1000", "-I", out, os.path.join(out, "filt.c"), os.path.join(EMB, "driver.c"),
                    "-o", exe], check=True)
    return exe


def run(out, exe, x, dtype):
    with open(os.path.join(out, "in.bin"), "wb") as f:
        np.array([x.shape[1], BLOCK], np.uint32).tofile(f)
        for t0 in range(0, x.shape[1], BLOCK):
            x[:, t0:t0 + BLOCK].astype(dtype).tofile(f)
    subprocess.run([exe], check=True, cwd=out)
    raw = np.fromfile(os.path.join(out, "out.bin"), dtype)
    C = x.shape[0]
    return raw.reshape(-1, C, BLOCK).transpose(1, 0, 2).reshape(C, -1).astype(np.float64)


def main():
    exe = os.environ.get("CONVREC_BIN", "./convrec")
    rir = os.path.join(SRC, "..", "shared", "data", "rir", "rir_clap.npy")
    cases = [("cabinet", os.path.join(SRC, "examples", "cabinet_ir.npy"), 32)]
    if os.path.exists(rir):
        cases.append(("rir_clap", rir, 64))
    else:
        print("bench=export_fixed note=shared_data_missing model=rir_clap skipped=1")
    rng = np.random.default_rng(1)
    signals = {"white": rng.uniform(-0.5, 0.5, T), "music": music(T, np.random.default_rng(2))}
    with tempfile.TemporaryDirectory() as d:
        for label, path, order in cases:
            mfile = os.path.join(d, label + ".safetensors")
            subprocess.run([exe, "fit", path, "--order", str(order), "--horizon", "infinite", "-o", mfile],
                           check=True, stdout=subprocess.DEVNULL)
            m = convrec.Model.load(mfile)
            for numeric in ("q31", "q15", "float"):
                out = os.path.join(d, f"{label}_{numeric}")
                args = [exe, "export", mfile, "--format", "c", "--name", "filt", "-o", out]
                if numeric != "float":
                    args += ["--numeric", numeric]
                r = subprocess.run(args, capture_output=True, text=True)
                refused = r.returncode != 0
                if refused:
                    why = r.stderr.strip().splitlines()[0]
                    print(f"bench=export_fixed model={label} order={order} numeric={numeric} refused=1 "
                          f"detail=\"{why}\"", flush=True)
                    r = subprocess.run(args + ["--max-error", "inf"], capture_output=True, text=True, check=True)
                pred = re.search(r"SNR ([-\d.]+) dB", r.stdout)
                shift = re.search(r"output shift (\d+)", r.stdout)
                S = int(shift.group(1)) if shift else 0
                F = {"q31": 31, "q15": 15, "float": 0}[numeric]
                typ, dt = {"q31": ("int32_t", np.int32), "q15": ("int16_t", np.int16),
                           "float": ("float", np.float32)}[numeric]
                prog = build(out, typ)
                for sname, sig in signals.items():
                    if F:
                        x = np.round(sig * 2.0 ** F)[None, :]
                        u = x / 2.0 ** F
                    else:
                        x = sig.astype(np.float32)[None, :]
                        u = x.astype(np.float64)
                    y = run(out, prog, x, dt)
                    ref = m.filter(u) * 2.0 ** (F - S)
                    snr = 10 * np.log10(np.sum(ref ** 2) / np.sum((y - ref) ** 2))
                    peak = np.abs(y).max() / (2.0 ** F if F else 1.0)
                    print(f"bench=export_fixed model={label} order={order} numeric={numeric} signal={sname} "
                          f"samples={T} snr_db={snr:.1f} "
                          f"predicted_fullscale_white_db={pred.group(1) if pred else 'na'} "
                          f"output_shift={S} output_peak_fs={peak:.3g}"
                          f"{' forced=max_error_inf' if refused else ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
