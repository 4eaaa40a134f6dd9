#!/usr/bin/python3
"""Whole-sequence throughput: `convrec filter` (recurrence, order N) against
`convrec conv` (FFT convolution with the original length-L kernels), both as
whole processes (start-up, file I/O included), on the same (C, T) input.

    CONVREC_BIN=build/convrec /usr/bin/python3 bench/bench_filter_vs_conv.py [--C 256] [--T 65536] [--L 8192] [--N 16]

Prints key=value lines. Acceptance (issue 4): filter_s <= conv_s.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def best_time(cmd, reps):
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--C", type=int, default=256)
    ap.add_argument("--T", type=int, default=65536)
    ap.add_argument("--L", type=int, default=8192)
    ap.add_argument("--N", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    a = ap.parse_args()
    exe = os.environ.get("CONVREC_BIN", "./convrec")
    rng = np.random.default_rng(0)
    k = np.arange(a.L)
    # damped-oscillation kernels decaying within the window
    h = np.zeros((a.C, a.L))
    for c in range(a.C):
        for _ in range(a.N // 2):
            rho = np.exp(-rng.uniform(2, 12) / a.L * 4)
            h[c] += rng.standard_normal() * rho ** k * np.cos(rng.uniform(0, np.pi) * k)
    u = rng.standard_normal((a.C, a.T)).astype(a.dtype)
    with tempfile.TemporaryDirectory() as d:
        hp, up, mp = os.path.join(d, "h.npy"), os.path.join(d, "u.npy"), os.path.join(d, "m.safetensors")
        np.save(hp, h)
        np.save(up, u)
        t = time.perf_counter()
        subprocess.run([exe, "fit", hp, "-o", mp, "--order", str(a.N), "--quiet"], check=True)
        fit_s = time.perf_counter() - t
        conv_s = best_time([exe, "conv", hp, up, "-o", os.path.join(d, "yc.npy")], a.reps)
        filt_s = best_time([exe, "filter", mp, up, "-o", os.path.join(d, "yf.npy")], a.reps)
        yc, yf = np.load(os.path.join(d, "yc.npy")), np.load(os.path.join(d, "yf.npy"))
        err = np.linalg.norm(yf.astype(np.float64) - yc) / np.linalg.norm(yc)
    common = f"C={a.C} T={a.T} L={a.L} N={a.N} dtype={a.dtype}"
    print(f"bench=filter_vs_conv {common} what=fit seconds={fit_s:.4f}")
    print(f"bench=filter_vs_conv {common} what=conv_process seconds={conv_s:.4f}")
    print(f"bench=filter_vs_conv {common} what=filter_process seconds={filt_s:.4f} ratio_to_conv={filt_s / conv_s:.3f}")
    print(f"bench=filter_vs_conv {common} what=output_rel_l2 value={err:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
