#!/usr/bin/python3
"""Two convrec commands fitting the same banks: wall time and the median
window error of each (from `info --json`), best of REPEAT runs. For "no
family slower than before": REF is a convrec built from an older commit.

    bench/compare_fit.py REF NEW BANK.npy... [--order 16] [--threads 2] [--horizon H] [--repeat 2]

One key=value line per bank: the times, the medians, and per channel the
ratio of the new error to the old one (how many channels moved by more than
1% either way, the extremes, the geometric mean), whether the orders are the
same, and the largest relative difference of the recorded sigma_{N+1}. Both commands run with OPENBLAS_NUM_THREADS=1
(and CONVREC_NO_REEXEC=1, which older builds needed to honour it)."""
import argparse
import json
import math
import os
import statistics
import subprocess
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("ref")
ap.add_argument("new")
ap.add_argument("banks", nargs="+")
ap.add_argument("--order", default="16")
ap.add_argument("--threads", default="2")
ap.add_argument("--horizon", default="window")
ap.add_argument("--repeat", type=int, default=2)
a = ap.parse_args()
env = dict(os.environ, OPENBLAS_NUM_THREADS="1", CONVREC_NO_REEXEC="1")


def run(exe, bank, out):
    best = None
    for _ in range(a.repeat):
        t = time.perf_counter()
        subprocess.run([exe, "fit", bank, "-o", out, "--order", a.order, "--threads", a.threads, "--horizon", a.horizon, "-q"],
                       check=True, env=env)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    info = json.loads(subprocess.run([exe, "info", out, "--json"], check=True, env=env,
                                     capture_output=True, text=True).stdout)
    errs = [ch["err_window"] if info["horizon"] == "window" else ch["err_infinite"] for ch in info["channel"]]
    sig = [ch["sigma_next"] for ch in info["channel"]]
    orders = [ch["order"] for ch in info["channel"]]
    return best, errs, sig, orders


with tempfile.TemporaryDirectory() as d:
    for bank in a.banks:
        tr, er, sr, orr = run(a.ref, bank, os.path.join(d, "ref.safetensors"))
        tn, en, sn, onn = run(a.new, bank, os.path.join(d, "new.safetensors"))
        C = len(er)
        # per channel: new error / old error (0/0 counts as equal)
        r = [(y / x if x > 0 else (1.0 if y == 0 else math.inf)) for x, y in zip(er, en)]
        dsig = max((abs(y - x) / x if x > 0 else abs(y)) for x, y in zip(sr, sn))
        geo = math.exp(sum(math.log(max(v, 1e-300)) for v in r) / C) if all(math.isfinite(v) for v in r) else math.inf
        mr, mn = statistics.median(er), statistics.median(en)
        print(f"bank={os.path.basename(bank)} channels={C} order={a.order} horizon={a.horizon} threads={a.threads} "
              f"sec_ref={tr:.3f} sec_new={tn:.3f} speedup={tr / tn:.2f} "
              f"err_median_ref={mr:.6e} err_median_new={mn:.6e} err_median_ratio={mn / mr if mr > 0 else 1.0:.5f} "
              f"channels_worse_1pct={sum(v > 1.01 for v in r)} channels_better_1pct={sum(v < 0.99 for v in r)} "
              f"max_err_ratio={max(r):.4f} min_err_ratio={min(r):.4f} geo_mean_err_ratio={geo:.5f} "
              f"orders_equal={int(orr == onn)} sigma_next_max_rel_diff={dsig:.1e}", flush=True)
