#!/usr/bin/python3
"""Compare `convrec conv` with scipy.signal.fftconvolve.

    /usr/bin/python3 bench/bench_conv_scipy.py [--C 256] [--L 8192] [--T 8192] [--reps 5]

Generates a (C, L) float64 kernel bank and a (C, T) float64 signal, times
scipy.signal.fftconvolve in-process (axes=-1, output truncated to T; best of
reps), times the whole `convrec conv KERNELS.npy IN.npy -o OUT.npy` process
(start-up, file I/O and planning included; best of reps; binary from env
CONVREC_BIN, default ./convrec), and checks the relative l2 difference of
the two outputs. Prints one key=value line per measurement. Exit status: 0
when the outputs agree to --tol (default 1e-10), 1 otherwise, 77 when the
binary is missing. Acceptance (issue 2): convrec_process seconds <= 0.5 x
scipy seconds, i.e. ratio_to_scipy <= 0.5.

Each repetition writes to a new output path (output=fresh in the result
line), as a user's single run does: overwriting the previous repetition's
16 MiB output would add the file system's cost of freeing the old file's
blocks (several ms on ext4 mounted with `discard`), which is not part of
the conversion. The last output is the one checked against scipy.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy
import scipy.signal


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--C", type=int, default=256)
    ap.add_argument("--L", type=int, default=8192)
    ap.add_argument("--T", type=int, default=8192)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    exe = os.environ.get("CONVREC_BIN", "./convrec")
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        print(f"bench=conv_scipy what=skip reason=no_binary path={exe}")
        return 77

    rng = np.random.default_rng(a.seed)
    k = np.arange(a.L)
    # Decaying random kernels, like trained long-convolution filters.
    h = rng.standard_normal((a.C, a.L)) * np.exp(-3.0 * k / a.L)
    u = rng.standard_normal((a.C, a.T))
    common = f"C={a.C} L={a.L} T={a.T} dtype=float64"

    best_sp = float("inf")
    ref = None
    for _ in range(a.reps):
        t0 = time.perf_counter()
        ref = scipy.signal.fftconvolve(h, u, axes=-1)[:, : a.T]
        best_sp = min(best_sp, time.perf_counter() - t0)
    print(f"bench=conv_scipy what=scipy_fftconvolve {common} seconds={best_sp:.6f} "
          f"scipy={scipy.__version__} numpy={np.__version__}")

    with tempfile.TemporaryDirectory(prefix="convrec-bench-") as d:
        kp, up = (os.path.join(d, n) for n in ("kernels.npy", "in.npy"))
        np.save(kp, h)
        np.save(up, u)
        best_cr = float("inf")
        for rep in range(a.reps):
            op = os.path.join(d, f"out{rep}.npy")
            cmd = [exe, "conv", kp, up, "-o", op]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            dt = time.perf_counter() - t0
            if r.returncode != 0:
                msg = r.stderr.decode(errors="replace").strip().replace("\n", " | ")
                print(f"bench=conv_scipy what=convrec_process {common} status=failed "
                      f"returncode={r.returncode} stderr=\"{msg}\"")
                return 1
            best_cr = min(best_cr, dt)
        y = np.load(op)
    print(f"bench=conv_scipy what=convrec_process {common} seconds={best_cr:.6f} "
          f"ratio_to_scipy={best_cr / best_sp:.3f} target_ratio=0.5 output=fresh "
          f"omp_num_threads={os.environ.get('OMP_NUM_THREADS', 'default')}")

    ok = y.shape == ref.shape and y.dtype == np.float64
    err = float("nan")
    if ok:
        err = float(np.linalg.norm(y - ref) / np.linalg.norm(ref))
        ok = err <= a.tol
    print(f"bench=conv_scipy what=check {common} shape={'x'.join(map(str, y.shape))} "
          f"dtype={y.dtype} rel_l2={err:.3e} tol={a.tol:g} ok={int(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
