#!/usr/bin/python3
"""Octave-weighted fits against unweighted ones, judged by the third-octave
band error (docs/MATH.md "Band errors", "Weighted fits").

For every case (a kernel, its sample rate, an order N) both fits are made at
the same order with the infinite horizon (a measured response ends at L):
    unweighted: convrec.fit(h, order=N, horizon="infinite", rate=FS)
    weighted:   the same with weight="octave"
and their records compared: the largest band error over the bands from 20 Hz
to FS/2 (band_db_max), its RMS, the l2 and H-inf errors.

Cases: the shared measured room responses (../shared/data/rir: rir_clap
44.1 kHz, both ears of brir_sweep) and a held-out set this method was never
tuned on: examples/cabinet_ir.npy (48 kHz) and synthetic cabinets and rooms
drawn with seeds the tests do not use, at several orders.

    CONVREC_LIB=build/.libs PYTHONPATH=python /usr/bin/python3 bench/bench_weighted.py [--quick]

Acceptance (issue 10): the weighted fit has the lower band_db_max in at
least 80 % of the cases; the median reduction is printed.
"""
import argparse
import os
import sys
import time

import numpy as np

import convrec

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("CONVREC_DATA") or os.path.join(HERE, "..", "..", "shared", "data")


def cabinet(L, rate, nres, seed):
    """Loudspeaker-cabinet-like: damped resonances at log-spaced frequencies
    (60 Hz .. 8 kHz, Q 2..12), gains falling with frequency, a faint noise
    floor (the construction of examples/make_examples.py, other seeds)."""
    rng = np.random.default_rng(seed)
    t = np.arange(L) / rate
    f = np.geomspace(60.0, 8000.0, nres) * rng.uniform(0.95, 1.05, nres)
    q = rng.uniform(2.0, 12.0, nres)
    g = rng.standard_normal(nres) / np.sqrt(f / 60.0)
    h = np.zeros(L)
    for fi, qi, gi in zip(f, q, g):
        h += gi * np.exp(-np.pi * fi / qi * t) * np.sin(2 * np.pi * fi * t + rng.uniform(0, np.pi))
    h /= np.abs(h).max()
    return h + 1e-3 * rng.standard_normal(L) * np.exp(-t / 0.01)


def room(L, rate, t60, seed):
    """Small-room-like: direct sound, early reflections (image-source-like
    delays with random signs), exponentially decaying noise of the given
    T60, 1/f^0.5 tilt above 2 kHz (air and wall absorption)."""
    rng = np.random.default_rng(seed)
    h = np.zeros(L)
    h[0] = 1.0
    for _ in range(12):
        k = int(rng.uniform(0.002, 0.03) * rate)
        if k < L:
            h[k] += rng.uniform(-0.6, 0.6)
    k = np.arange(L)
    tail = 0.2 * rng.standard_normal(L) * 10.0 ** (-3.0 * k / (t60 * rate))
    T = np.fft.rfft(tail)
    f = np.fft.rfftfreq(L, 1 / rate)
    T /= np.sqrt(np.maximum(f / 2000.0, 1.0))
    return h + np.fft.irfft(T, L)


def cases(quick):
    out = []
    p = os.path.join(DATA, "rir", "rir_clap.npy")
    if os.path.exists(p):
        h = np.load(p)
        for N in ((16, 32) if quick else (8, 16, 32, 48)):
            out.append(("rir_clap", "shared", h, 44100.0, N))
    p = os.path.join(DATA, "rir", "brir_sweep.npy")
    if os.path.exists(p):
        b = np.load(p)
        for ear in range(2):
            for N in ((24,) if quick else (16, 32)):
                out.append((f"brir_sweep[{ear}]", "shared", b[ear], 44100.0, N))
    cab = np.load(os.path.join(HERE, "..", "examples", "cabinet_ir.npy"))
    for N in ((12, 24) if quick else (8, 12, 16, 24, 32)):
        out.append(("cabinet_ir", "held-out", cab, 48000.0, N))
    seeds = range(101, 103) if quick else range(101, 107)
    for i, s in enumerate(seeds):
        rate = 48000.0 if i % 2 == 0 else 44100.0
        L = (2048, 4096, 8192)[i % 3]
        nres = (12, 20, 32)[i % 3]
        for N in ((16,) if quick else (8, 16, 32)):
            out.append((f"cabinet(seed {s}, {nres} res)", "held-out", cabinet(L, rate, nres, s), rate, N))
    for i, s in enumerate(seeds):
        rate = 44100.0 if i % 2 == 0 else 48000.0
        t60 = (0.15, 0.3, 0.5)[i % 3]
        L = int(min(t60, 0.4) * rate)
        for N in ((16,) if quick else (12, 24, 40)):
            out.append((f"room(seed {s}, T60 {t60} s)", "held-out", room(L, rate, t60, s), rate, N))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer cases and orders")
    args = ap.parse_args()
    cs = cases(args.quick)
    print("# bench_weighted: band_db_max (largest third-octave band error, dB) of the unweighted and the")
    print("# octave-weighted fit at the same order; infinite horizon; records of cr_fit")
    print(f"# {'case':<30} {'set':<8} {'rate':>6} {'L':>6} {'N':>3} | {'unw max':>7} {'rms':>6} {'l2':>6} {'s':>5}"
          f" | {'w max':>7} {'rms':>6} {'l2':>6} {'s':>5} | {'reduction':>9}")
    rows = []
    for name, kind, h, rate, N in cs:
        rec = {}
        for w in ("none", "octave"):
            t = time.perf_counter()
            m = convrec.fit(h, order=N, horizon="infinite", rate=rate, weight=w, threads=1)
            dt = time.perf_counter() - t
            r = m.records()
            assert np.all(m.spectral_radius() <= 1 - 1e-6 + 1e-15)
            rec[w] = (r["band_db_max"][0], r["band_db_rms"][0], r["err_infinite"][0], dt, r["band_worst_hz"][0])
        u, o = rec["none"], rec["octave"]
        red = u[0] - o[0]
        rows.append((kind, red, u[0], o[0]))
        print(f"  {name:<30} {kind:<8} {rate:6.0f} {len(h):6d} {N:3d} | {u[0]:7.2f} {u[1]:6.2f} {u[2]:6.3f} {u[3]:5.1f}"
              f" | {o[0]:7.2f} {o[1]:6.2f} {o[2]:6.3f} {o[3]:5.1f} | {red:+9.2f}", flush=True)
    red = np.array([r[1] for r in rows])
    wins = red > 0
    print()
    for kind in ("shared", "held-out", "all"):
        sel = np.array([kind == "all" or r[0] == kind for r in rows])
        if not sel.any():
            continue
        ratio = np.array([r[3] / r[2] for r in rows])[sel]
        print(f"summary {kind:<8}: cases {sel.sum():3d}  weighted lower band_db_max in {wins[sel].sum()} "
              f"({100.0 * wins[sel].mean():.0f} %)  median reduction {np.median(red[sel]):.2f} dB  "
              f"median ratio weighted/unweighted {np.median(ratio):.3f}")
    ok = wins.mean() >= 0.8
    print(f"acceptance (>= 80 % of cases lower with weighting): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
