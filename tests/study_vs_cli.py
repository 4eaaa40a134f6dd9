#!/usr/bin/python3
"""Check a study.json against `convrec fit` + `convrec info --json` run by hand.

    tests/study_vs_cli.py STUDY.json [--convrec build/convrec] [--threads T]

For every family, horizon, method and order of the study, fits the study's
channels of the family's file with the command (one bank of those channels),
reads the model with `convrec info --json`, and compares every number the
study holds for each fit (order, errors, sigma_N+1, bound, spectral radius,
margin, ...) with the same channel of the command's model. Equal means equal
as cJSON prints them (within one DBL_EPSILON relative). Prints one line per
configuration and a summary; exit status 1 on any difference.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

KEYS = ("order", "d", "spectral_radius", "stability_margin", "stable", "length", "err_window",
        "err_infinite", "err_hinf", "h_norm", "sigma_next", "bt_bound", "hinf_over_sigma", "within_bt_bound")


def same(a, b):
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    return a == b or abs(a - b) <= max(abs(a), abs(b)) * np.finfo(float).eps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study")
    ap.add_argument("--convrec", default=os.environ.get("CONVREC_BIN", "convrec"))
    ap.add_argument("--threads", default=None)
    a = ap.parse_args()
    s = json.load(open(a.study))
    st = s["settings"]
    bad = compared = 0
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="convrec-check-") as tmp:
        for fam in s["families"]:
            chans = [c for c in s["channels"] if c["family"] == fam["name"]]
            if fam["file"].lower().endswith(".wav"):
                sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
                from convrec.inputs import load_kernels
                H = load_kernels(fam["file"])[0]
            else:
                H = np.load(fam["file"])
                H = H[None] if H.ndim == 1 else H
            bank = os.path.join(tmp, "bank.npy")
            np.save(bank, np.ascontiguousarray(H[[c["channel"] for c in chans]], dtype=np.float64))
            for hz in st["horizons"]:
                for me in st["methods"]:
                    for N in st["orders"]:
                        model = os.path.join(tmp, "m.safetensors")
                        cmd = [a.convrec, "fit", bank, "-o", model, "--order", str(N), "--horizon", hz,
                               "--method", me, "-q"]
                        if st.get("margin") is not None:
                            cmd += ["--margin", repr(st["margin"])]
                        if a.threads:
                            cmd += ["--threads", a.threads]
                        subprocess.run(cmd, check=True)
                        info = json.loads(subprocess.run([a.convrec, "info", model, "--json"], check=True,
                                                         capture_output=True, text=True).stdout)
                        diffs = []
                        for i, c in enumerate(chans):
                            fits = [f for f in c["fits"] if (f["horizon"], f["method"], f["order_requested"]) == (hz, me, N)]
                            if len(fits) != 1:
                                diffs.append(f"channel {c['channel']}: {len(fits)} fits in the study")
                                continue
                            for k in KEYS:
                                if not same(fits[0].get(k), info["channel"][i][k]):
                                    diffs.append(f"channel {c['channel']} {k}: study {fits[0].get(k)} cli {info['channel'][i][k]}")
                            compared += 1
                        bad += len(diffs)
                        print(f"{fam['name']} {hz} {me} N={N}: {len(chans)} channels, "
                              f"{'equal' if not diffs else str(len(diffs)) + ' differences: ' + '; '.join(diffs[:3])}",
                              flush=True)
    print(f"{compared} fits compared field by field ({len(KEYS)} fields) in {time.monotonic() - t0:.0f} s: "
          f"{'all equal' if not bad else str(bad) + ' differences'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
