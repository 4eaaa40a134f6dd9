"""`convrec study`: fit every selected channel at every order with every
method and horizon, against the Hankel-singular-value bounds.

    python3 -m convrec study KERNELS... [--orders 2,4,8] [--horizon window,infinite]
                             [--methods auto,bt,hna,pencil] [--channels SPEC] -o DIR

writes DIR/study.json (every number) and DIR/index.html (the figures).
The fits are convrec.fit calls in this process, one channel and one order
each, on --jobs threads (the library releases the GIL); a fit's numbers
are those of its model's records, i.e. what `convrec fit` + `convrec info
--json` give for the same kernel, order, horizon and method.

Bounds at order N, from the Hankel singular values of the zero-padded (FIR)
Hankel matrix of the kernel (convrec.hsv, horizon 'infinite'):
    sigma_next = sigma_{N+1}        no stable order-N model has a smaller
                                    H-infinity error (Adamjan-Arov-Krein)
    hna_bound  = sum_{i>N} sigma_i  Hankel-norm approximation guarantees it
    bt_bound   = 2 sum_{i>N} sigma_i  balanced truncation guarantees it
With every value computed (kernels up to FULL_HSV_MAX + 1 samples) they are
exact; otherwise the values past the computed ones are bounded from above
(Cauchy-Schwarz on the Frobenius norm of the Hankel matrix) and the bounds
are marked "exact": false (upper bounds).
"""
import json
import math
import os
import queue
import signal
import sys
import threading
import time

import numpy as np

from .inputs import (UserError, check_outputs, load_kernels, parse_channels, parse_list, parse_orders, prepare_outdir,
                     write_atomic)

FORMAT = "convrec-study"
FORMAT_VERSION = 1
FULL_HSV_MAX = 2048       # FIR Hankel sizes up to this get every value (dense SVD)
METHODS = ("auto", "bt", "hna", "pencil")
HORIZONS = ("window", "infinite")
DEFAULT_ORDERS = "2,4,8,16,32,64"


# ---------------------------------------------------------------- numbers
def _finite(x):
    x = float(x)
    return x if math.isfinite(x) else None


def hankel_values(h, max_order):
    """The FIR Hankel singular values of kernel h (1-D) that the bounds up
    to max_order need: every value when the matrix is small enough, else
    enough for max_order plus a margin. Returns a dict (JSON-ready)."""
    import convrec
    L = h.size
    r = L - 1                                  # H[i, j] = h[i+j+1], i, j < L - 1
    m = np.arange(L, dtype=np.float64)
    fro2 = float(np.sum(m * h * h))            # h[m] appears m times for m <= L - 1
    if r <= 0 or fro2 == 0.0:
        return {"values": [], "count": 0, "rank_bound": max(r, 0), "complete": True, "frobenius2": fro2}
    K = r if r <= FULL_HSV_MAX else min(r, max(2 * max_order + 16, 128))
    s = convrec.hsv(h, k=K, horizon="infinite")[0]
    return {"values": [float(x) for x in s], "count": int(K), "rank_bound": int(r),
            "complete": bool(K == r), "frobenius2": fro2}


def bounds_at(hv, N):
    """sigma_{N+1}, sum_{i>N} sigma_i and 2 sum_{i>N} sigma_i from the values
    in hv (hankel_values); 'exact' is False when a value past the computed
    ones is needed and an upper bound stands in for it."""
    s = np.asarray(hv["values"], dtype=np.float64)
    K, r = s.size, hv["rank_bound"]
    if N >= r or K == 0:
        return {"order": int(N), "sigma_next": 0.0, "hna_bound": 0.0, "bt_bound": 0.0, "exact": True}
    rest = 0.0
    exact = hv["complete"]
    if not exact:
        # sum over i > K of sigma_i <= (r - K) sigma_K and <= sqrt((r - K) * energy left)
        left = max(0.0, hv["frobenius2"] - float(np.sum(s * s)))
        rest = min((r - K) * s[-1], math.sqrt((r - K) * left))
    if N < K:
        sig = float(s[N])
        tail = float(np.sum(s[N:])) + rest
    else:
        exact = False
        sig = float(s[-1])
        tail = rest
    return {"order": int(N), "sigma_next": sig, "hna_bound": tail, "bt_bound": 2.0 * tail, "exact": bool(exact)}


def hinf_norm(h):
    """max |H(e^iw)| of the kernel on an FFT grid of 8L points."""
    return float(np.max(np.abs(np.fft.rfft(h, 8 * h.size))))


def fit_entry(h, N, horizon, method, margin=None):
    """One fit of one kernel: the model's records, spectral radius and the
    time, as the JSON entry of the study (names as in `convrec info --json`)."""
    import convrec
    e = {"horizon": horizon, "method": method, "order_requested": int(N)}
    t0 = time.perf_counter()
    try:
        m = convrec.fit(h, order=int(N), horizon=horizon, method=method, margin=margin, threads=1)
    except (convrec.ConvrecError, ValueError) as err:
        e["time_s"] = time.perf_counter() - t0
        e["error"] = str(err)
        return e
    e["time_s"] = time.perf_counter() - t0
    rec = {k: v[0] for k, v in m.records().items()}
    rad = float(m.spectral_radius()[0])
    e["order"] = int(m.orders()[0])
    e["spectral_radius"] = _finite(rad)
    e["stability_margin"] = _finite(1.0 - rad)
    e["stable"] = bool(rad < 1.0)
    for k in ("err_window", "err_infinite", "err_hinf", "h_norm", "sigma_next", "bt_bound"):
        e[k] = _finite(rec[k])
    e["length"] = int(rec["length"])
    e["hinf_over_sigma"] = _finite(rec["err_hinf"] / rec["sigma_next"]) if rec["sigma_next"] != 0 else None
    e["within_bt_bound"] = bool(rec["err_hinf"] <= rec["bt_bound"] * (1 + 1e-9))
    e["d"] = _finite(m.d[0])
    return e


def objective_error(fit):
    """The relative l2 error of the fit's own objective (window or infinite)."""
    return fit.get("err_window") if fit.get("horizon") == "window" else fit.get("err_infinite")


# ---------------------------------------------------------------- the run
def _blas_single_thread():
    """The study runs fits and Hankel SVDs in parallel Python threads, each
    wanting LAPACK single-threaded (convrec.h, "BLAS"). convrec.fit does so
    for its own call; the SVDs of convrec.hsv do not, so the whole run keeps
    OpenBLAS at one thread (the `convrec` command's hand-over sets
    OPENBLAS_NUM_THREADS; this covers `python3 -m convrec` run directly)."""
    import convrec
    if convrec._blas_set is not None:
        convrec._blas_set(1)


class _Progress:
    """A one-line bar on stderr, only when stderr is a terminal."""

    def __init__(self, total, enabled):
        self.total, self.done, self.t0 = total, 0, time.monotonic()
        self.on = enabled and sys.stderr.isatty()
        self.last = ""

    def update(self, done, what=""):
        self.done = done
        if not self.on:
            return
        el = time.monotonic() - self.t0
        frac = done / self.total if self.total else 1.0
        eta = f"  eta {_hms(el / frac - el)}" if 0 < frac < 1 and el > 2 else ""
        w = 30
        fill = int(frac * w)
        line = f"\rstudy [{'#' * fill}{' ' * (w - fill)}] {100 * frac:3.0f}%  {done}/{self.total} fits  {_hms(el)}{eta}  {what}"
        line = line[:118]
        sys.stderr.write(line + " " * max(0, len(self.last) - len(line)))
        sys.stderr.flush()
        self.last = line

    def close(self):
        if self.on:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _hms(s):
    s = int(round(s))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def build_parser(sub=None):
    import argparse
    from .inputs import CHANNELS_GRAMMAR
    kw = dict(prog="convrec study", formatter_class=argparse.RawDescriptionHelpFormatter,
              description="Fit every selected channel of each kernel file at every order, with every method\n"
                          "and horizon, and compare the errors with the Hankel-singular-value bounds\n"
                          "(sigma_N+1 floor, 2 sum sigma_i>N ceiling). Writes DIR/study.json (every number)\n"
                          "and DIR/index.html (figures embedded); prints a table of medians on stdout.\n"
                          "Ctrl-C stops after the fits in progress and keeps what is finished.",
              epilog=CHANNELS_GRAMMAR + "\n\nExit status: 0 done, 1 bad input, 2 usage error, 130 interrupted.")
    p = sub.add_parser("study", **kw) if sub is not None else argparse.ArgumentParser(**kw)
    p.add_argument("kernels", nargs="+", metavar="KERNELS",
                   help="kernel files (.npy (L,) or (C, L) float32/float64, or .wav), each a family named by "
                        "the file (or NAME=FILE)")
    p.add_argument("-o", dest="out", required=True, metavar="DIR", help="output folder (made if missing)")
    p.add_argument("--orders", default=DEFAULT_ORDERS, metavar="LIST",
                   help=f"orders N: 2,4,8 or 2..64 (every order) or 2..64:2 (default {DEFAULT_ORDERS})")
    p.add_argument("--horizon", default="window,infinite", metavar="H",
                   help="window, infinite, or both as window,infinite or 'both' (default both)")
    p.add_argument("--methods", default=",".join(METHODS), metavar="LIST",
                   help="fit methods among auto,bt,hna,pencil (default all four)")
    p.add_argument("--channels", default="all", metavar="SPEC",
                   help="channels of each file, e.g. 0,3,7 or 0..15 or ::16 (default all; grammar below)")
    p.add_argument("--rate", type=float, default=None, metavar="FS",
                   help="sample rate in Hz (recorded; .wav files carry their own)")
    p.add_argument("--margin", type=float, default=None, metavar="M",
                   help="pole margin of the fits, |lambda| <= 1 - M (default: the library's, 1e-6)")
    p.add_argument("--jobs", type=int, default=None, metavar="J",
                   help="channels fitted at once, one thread each (default: one per core, at most 2)")
    p.add_argument("--format", default=None, metavar="FMT",
                   help="also write the figures as files DIR/figures/*.FMT: png, pdf or svg (comma list)")
    p.add_argument("-q", "--quiet", action="store_true", help="no table on stdout, no progress bar")
    return p


def run(args):
    """Run a study from parsed arguments; returns the exit status."""
    from . import report
    orders = parse_orders(args.orders)
    horizons = parse_list(args.horizon, HORIZONS, "--horizon", {"both": list(HORIZONS)})
    methods = parse_list(args.methods, METHODS, "--methods", {"all": list(METHODS)})
    formats = report.parse_formats(args.format)
    if args.rate is not None and not (args.rate > 0 and math.isfinite(args.rate)):
        raise UserError(f"--rate must be a positive number of Hz, not {args.rate}")
    if args.margin is not None and not (0 <= args.margin < 1):
        raise UserError(f"--margin must be in [0, 1), not {args.margin}")
    jobs = args.jobs if args.jobs is not None else max(1, min(2, os.cpu_count() or 1))
    if jobs < 1 or jobs > 64:
        raise UserError(f"--jobs must be 1 to 64, not {jobs}")
    report.check_plotting()

    # every input is read and checked before anything is written or fitted
    families = []
    names = set()
    for arg in args.kernels:
        name, path = family_name(arg)
        H, rate = load_kernels(path)
        if H.shape[1] < 2:
            raise UserError(f"{path}: kernels of length {H.shape[1]} have nothing to fit (no Hankel singular values)")
        chans, _ = parse_channels(args.channels, H.shape[0], what=f"--channels (in {path})")
        base, i = name, 2
        while name in names:
            name, i = f"{base}-{i}", i + 1
        names.add(name)
        families.append({"name": name, "file": os.path.abspath(path), "shape": list(H.shape),
                         "rate": args.rate if args.rate is not None else rate, "channels": chans, "_H": H})
    out = prepare_outdir(args.out)
    check_outputs(out, ["study.json", "index.html"] + [f"figures/study_{q}.{f}" for q in ("hinf", "l2", "time")
                                                       for f in formats], [f["file"] for f in families])

    _blas_single_thread()
    study = {"format": FORMAT, "format_version": FORMAT_VERSION, "convrec_version": _version(),
             "command": ["convrec", "study"] + list(getattr(args, "argv", [])),
             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "complete": False,
             "settings": {"orders": orders, "horizons": horizons, "methods": methods, "margin": args.margin,
                          "channels": args.channels, "jobs": jobs,
                          "bounds": "FIR Hankel singular values (convrec.hsv, horizon infinite)"},
             "families": [{k: v for k, v in f.items() if k != "_H"} for f in families],
             "channels": [], "elapsed_s": 0.0}
    # Work items: the Hankel singular values of every channel first, then one
    # item per fit, channel by channel, so that the threads share the fits of
    # a channel (no thread idles at the end while another fits a whole one)
    # and channels complete in order.
    work = queue.Queue()
    entries = []
    for f in families:
        for c in f["channels"]:
            entry = {"family": f["name"], "channel": int(c), "length": int(f["_H"].shape[1]),
                     "complete": False, "fits": []}
            study["channels"].append(entry)
            entries.append((entry, f["_H"][c]))
    for entry, h in entries:
        work.put(("hsv", entry, h, None))
    for entry, h in entries:
        for hz in horizons:
            for me in methods:
                for N in orders:
                    work.put(("fit", entry, h, (hz, me, N)))
    per_channel = len(orders) * len(horizons) * len(methods)
    total = per_channel * len(entries)
    left = {id(e): per_channel + 1 for e, _ in entries}  # fits and the singular values still to come
    rank = {(hz, me, N): i for i, (hz, me, N) in enumerate(
        (hz, me, N) for hz in horizons for me in methods for N in orders)}
    json_path = os.path.join(out, "study.json")
    prog = _Progress(total, not args.quiet)
    t_start = time.monotonic()
    stop = threading.Event()
    results = queue.Queue()

    def worker():
        import convrec
        while not stop.is_set():
            try:
                kind, entry, h, cfg = work.get_nowait()
            except queue.Empty:
                return
            try:
                if kind == "hsv":
                    try:
                        hv = hankel_values(h, max(orders))
                    except (convrec.ConvrecError, ValueError) as e:
                        results.put(("chanerr", entry, f"Hankel singular values: {e}"))
                        continue
                    results.put(("head", entry, {"h_norm": float(np.linalg.norm(h)), "hinf_norm": hinf_norm(h),
                                                 "hsv": hv, "bounds": [bounds_at(hv, N) for N in orders]}))
                else:
                    hz, me, N = cfg
                    results.put(("fit", entry, fit_entry(h, N, hz, me, args.margin)))
            except BaseException as e:  # noqa: BLE001 - reported in the main thread
                results.put(("crash", entry, e))
                return

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(jobs, total + len(entries)))]
    interrupted = [0]

    def on_sigint(signum, frame):
        interrupted[0] += 1
        if interrupted[0] == 1:
            stop.set()
            sys.stderr.write("\nconvrec study: interrupted: finishing the fits in progress and writing "
                             "what is done (Ctrl-C again to stop at once)\n")
            sys.stderr.flush()
        else:
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    done = 0
    last_write = time.monotonic()
    try:
        for t in threads:
            t.start()
        while True:
            try:
                kind, entry, val = results.get(timeout=0.5)
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and results.empty():
                    break
                prog.update(done)
                continue
            finished = False
            if kind == "head":
                entry.update(val)
            elif kind == "fit":
                entry["fits"].append(val)
                done += 1
                prog.update(done, f"{entry['family']}[{entry['channel']}] {val['horizon']} {val['method']} "
                                  f"N={val['order_requested']}")
            elif kind == "chanerr":
                entry["error"] = val
                sys.stderr.write(f"{chr(10) if prog.on else ''}convrec study: {entry['family']} channel "
                                 f"{entry['channel']}: {val}; no bounds for it\n")
            elif kind == "crash":
                raise val
            if kind in ("head", "fit", "chanerr"):
                left[id(entry)] -= 1
                if left[id(entry)] == 0:
                    entry["fits"].sort(key=lambda f: rank[(f["horizon"], f["method"], f["order_requested"])])
                    entry["complete"] = "error" not in entry
                    finished = True
            if finished or time.monotonic() - last_write > 2.0:
                study["elapsed_s"] = time.monotonic() - t_start
                _write_json(json_path, study)
                last_write = time.monotonic()
    except KeyboardInterrupt:
        pass  # second Ctrl-C: write what is finished now, the fits in flight are abandoned
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
        prog.close()
    study["elapsed_s"] = time.monotonic() - t_start
    for e in study["channels"]:
        e["fits"].sort(key=lambda f: rank[(f["horizon"], f["method"], f["order_requested"])])
    study["complete"] = interrupted[0] == 0 and all(e["complete"] for e in study["channels"])
    _write_json(json_path, study)
    report.write_study_page(out, study, formats)
    if not args.quiet:
        print_table(study, sys.stdout)
        print(f"wrote {json_path} and {os.path.join(out, 'index.html')}"
              f"{'' if study['complete'] else ' (interrupted: what was finished)'}")
    failed = [e for e in study["channels"] if "error" in e]
    if failed and not interrupted[0]:
        sys.stderr.write(f"convrec study: {len(failed)} channel{'s' if len(failed) > 1 else ''} failed "
                         f"(study.json says why)\n")
        return 1
    if interrupted[0]:
        sys.stdout.flush()
        if interrupted[0] > 1:
            os._exit(130)  # fits still running in daemon threads cannot be joined
        return 130
    return 0


def family_name(arg):
    """NAME=PATH names a family; else the file's name without extension, or its
    folder's when the file is just called kernels.*."""
    if "=" in arg and not os.path.exists(arg):
        name, path = arg.split("=", 1)
        if not name or not path:
            raise UserError(f"'{arg}': give a kernel file, or NAME=FILE")
        return name, path
    stem = os.path.splitext(os.path.basename(arg))[0]
    if stem in ("kernels", "kernel") and os.path.basename(os.path.dirname(os.path.abspath(arg))):
        stem = os.path.basename(os.path.dirname(os.path.abspath(arg)))
    return stem, arg


def _version():
    try:
        import convrec
        return convrec.__version__
    except Exception:  # noqa: BLE001
        return None


def _write_json(path, study):
    """Indented at the top, one line per channel (its values and fits)."""
    head = {k: v for k, v in study.items() if k != "channels"}
    text = json.dumps(head, indent=1, allow_nan=False)
    chans = ",\n  ".join(json.dumps(c, allow_nan=False, separators=(",", ":")) for c in study["channels"])
    text = text[:-2] + ',\n "channels": [\n  ' + chans + "\n ]\n}\n" if study["channels"] else \
        text[:-2] + ',\n "channels": []\n}\n'
    write_atomic(path, text)


def load_study(path):
    """A study.json written by `convrec study` (checked loosely)."""
    try:
        with open(path, encoding="utf-8") as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable study.json ({e})") from None
    if not isinstance(s, dict) or s.get("format") != FORMAT:
        raise UserError(f"{path}: not a study.json written by convrec study")
    if s.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: study format version {s.get('format_version')}, this convrec reads {FORMAT_VERSION}")
    return s


# ---------------------------------------------------------------- the table
def summary_rows(study):
    """Rows (family, horizon, method, n, {order: (median error, median H-inf/sigma, median time)})."""
    rows = []
    fams = [f["name"] for f in study["families"]]
    st = study["settings"]
    for fam in fams:
        chans = [c for c in study["channels"] if c["family"] == fam and c.get("fits")]
        for hz in st["horizons"]:
            for me in st["methods"]:
                cells = {}
                for N in st["orders"]:
                    fits = [f for c in chans for f in c["fits"] if f["horizon"] == hz and f["method"] == me
                            and f["order_requested"] == N and "error" not in f]
                    if not fits:
                        continue
                    err = [objective_error(f) for f in fits if objective_error(f) is not None]
                    ratio = [f["hinf_over_sigma"] for f in fits if f.get("hinf_over_sigma") is not None]
                    tm = [f["time_s"] for f in fits]
                    cells[N] = (float(np.median(err)) if err else None,
                                float(np.median(ratio)) if ratio else None, float(np.median(tm)), len(fits))
                if cells:
                    rows.append((fam, hz, me, len(chans), cells))
    return rows


def print_table(study, f):
    orders = study["settings"]["orders"]
    rows = summary_rows(study)
    if not rows:
        f.write("no fit finished\n")
        return
    f.write("median over channels of the relative l2 error on the fit's own horizon"
            " (and of H-inf error / sigma_N+1)\n")
    head = f"{'family':<16} {'horizon':<8} {'method':<6} {'ch':>4} " + " ".join(f"{'N=' + str(N):>17}" for N in orders)
    f.write(head + "\n")
    for fam, hz, me, n, cells in rows:
        txt = []
        for N in orders:
            c = cells.get(N)
            if c is None:
                txt.append(f"{'-':>17}")
            else:
                e = "-" if c[0] is None else f"{c[0]:.2e}"
                r = "-" if c[1] is None else (f"{c[1]:.1f}" if c[1] < 1e4 else f"{c[1]:.0e}")
                txt.append(f"{e + ' (' + r + ')':>17}")
        f.write(f"{fam[:16]:<16} {hz:<8} {me:<6} {n:>4} " + " ".join(txt) + "\n")
    times = [x["time_s"] for c in study["channels"] for x in c["fits"]]
    nfail = sum("error" in x for c in study["channels"] for x in c["fits"])
    f.write(f"{len(times)} fits in {study['elapsed_s']:.1f} s (median {np.median(times) if times else 0:.3f} s per fit)"
            f"{f', {nfail} failed (see study.json)' if nfail else ''}\n")
