"""`convrec report`: one self-contained page for a fitted model (and the
kernels it came from), or for a study.

    python3 -m convrec report MODEL.safetensors [KERNELS] -o DIR [--channels worst,median]
    python3 -m convrec report DIR/study.json -o DIR2

DIR/index.html holds the summary table (the numbers of `convrec info
--json`, one row per channel) and, for the chosen channels, the impulse and
magnitude responses with the error, the poles, and the error against the
Hankel-singular-value floor and ceiling; figures are embedded PNGs, and
--format png,pdf,svg also writes them to DIR/figures/.
Nothing is written before every input has been read and checked, and every
file is written whole (temporary file + rename).
"""
import ctypes
import io
import math
import os
import time

import numpy as np

from . import pages
from .inputs import (CHANNELS_GRAMMAR, UserError, check_outputs, load_kernels, parse_channels, prepare_outdir,
                     write_atomic)

FORMATS = ("png", "pdf", "svg")
DEFAULT_MARGIN = 1e-6  # cr_fit_options_default: what the fit's margin circle is drawn at unless told

# The per-channel numbers of `convrec info --json` (cmd_info.c), in its order, with the
# way the page shows them; "modes" (the poles and residues) are in the figures instead.
INFO_COLUMNS = [("order", "order N", "int"), ("d", "d", ".4g"), ("spectral_radius", "max |λ|", ".8f"),
                ("stability_margin", "1 − max |λ|", ".3e"), ("stable", "stable", "text"),
                ("length", "L", "int"), ("err_window", "window l2", ".3e"),
                ("err_infinite", "infinite l2", ".3e"), ("err_hinf", "‖H−Ĥ‖∞", ".3e"),
                ("h_norm", "‖h‖₂", ".4g"), ("sigma_next", "σ<sub>N+1</sub>", ".3e"),
                ("bt_bound", "2Σσ<sub>i&gt;N</sub>", ".3e"), ("hinf_over_sigma", "‖H−Ĥ‖∞/σ<sub>N+1</sub>", ".3f"),
                ("within_bt_bound", "≤ 2Σσ", "text")]
METHOD_NAMES = {0: "auto", 1: "bt", 2: "hna", 3: "pencil", 4: "none"}
HORIZON_NAMES = {0: "window", 1: "infinite"}


def check_plotting():
    """matplotlib is needed for every page: a clear error before any work."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except ImportError as e:
        raise UserError(f"matplotlib is needed for the figures and cannot be imported ({e}); "
                        "Debian: apt-get install python3-matplotlib") from None


def parse_formats(spec):
    if not spec:
        return []
    out = []
    for f in str(spec).split(","):
        f = f.strip().lower()
        if f not in FORMATS:
            raise UserError(f"--format: '{f}' is not one of {', '.join(FORMATS)}")
        if f not in out:
            out.append(f)
    return out


def build_parser(sub=None):
    import argparse
    kw = dict(prog="convrec report", formatter_class=argparse.RawDescriptionHelpFormatter,
              description="Write DIR/index.html, one self-contained page (images embedded) for a fitted model\n"
                          "and, when given, the kernels it came from: the numbers of `convrec info --json`\n"
                          "(one row per channel) and, for the chosen channels, the kernel and the model's\n"
                          "impulse and magnitude responses with the error, the poles in the unit disk, and\n"
                          "the error against the Hankel-singular-value floor sigma_N+1 and ceiling\n"
                          "2 sum sigma_i>N. Given a study.json (convrec study), the page of that study.",
              epilog=CHANNELS_GRAMMAR + "\n\nExit status: 0 done, 1 bad input, 2 usage error.")
    p = sub.add_parser("report", **kw) if sub is not None else argparse.ArgumentParser(**kw)
    p.add_argument("model", metavar="MODEL", help="a model file (.safetensors) or a study.json")
    p.add_argument("kernels", nargs="?", metavar="KERNELS",
                   help="the kernels the model was fitted to (.npy or .wav; same channels and length)")
    p.add_argument("-o", dest="out", required=True, metavar="DIR", help="output folder (made if missing)")
    p.add_argument("--channels", default="worst,median", metavar="SPEC",
                   help="channels drawn in full (default worst,median; grammar below)")
    p.add_argument("--rate", type=float, default=None, metavar="FS",
                   help="sample rate in Hz: time in ms and frequency in Hz (.wav kernels carry theirs)")
    p.add_argument("--margin", type=float, default=DEFAULT_MARGIN, metavar="M",
                   help=f"the fit's pole margin, drawn as the circle |z| = 1 - M (default {DEFAULT_MARGIN:g}, the fit's default)")
    p.add_argument("--panels", default="auto", choices=("auto", "channel", "family"),
                   help="study pages: one panel per channel or per family (auto: per channel up to 9 channels)")
    p.add_argument("--format", default=None, metavar="FMT",
                   help="also write the figures as files DIR/figures/*.FMT: png, pdf or svg (comma list)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


# ---------------------------------------------------------------- the model
def load_model(path):
    """A model file, unstable ones included (shown and marked, as `convrec info` does)."""
    import convrec
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    try:
        return convrec.Model.load(path)
    except convrec.ConvrecError as e:
        if getattr(e, "status", None) != 1:  # CR_EUNSTABLE
            raise UserError(f"{path}: cannot load the model ({e})") from None
    lib = getattr(convrec, "_lib", None)
    if lib is None or not hasattr(lib, "cr_model_load_ex"):
        raise UserError(f"{path}: the model is unstable and this convrec package cannot load unstable models")
    f = lib.cr_model_load_ex
    f.restype, f.argtypes = ctypes.c_int, [ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p, ctypes.c_uint]
    h = ctypes.c_void_p()
    st = f(ctypes.byref(h), os.fsencode(path), 1)  # CR_LOAD_ALLOW_UNSTABLE
    if st != 0:
        raise UserError(f"{path}: cannot load the model ({convrec.ConvrecError(st)})")
    return convrec.Model(h.value)


def model_info(m, path):
    """What `convrec info --json` says, without the modes: (top, [channel dicts])."""
    v = m._view()  # method, horizon and slots per channel are not yet public attributes
    rec = m.records()
    rad = m.spectral_radius()
    orders = m.orders()
    d = m.d
    chans = []
    for c in range(m.channels):
        r = {k: float(rec[k][c]) for k in ("err_window", "err_infinite", "err_hinf", "h_norm", "sigma_next", "bt_bound")}
        rc = float(rad[c])
        e = {"channel": c, "order": int(orders[c]), "d": _fin(d[c]), "spectral_radius": _fin(rc),
             "stability_margin": _fin(1.0 - rc), "stable": bool(rc < 1), "length": int(rec["length"][c])}
        e.update({k: _fin(x) for k, x in r.items()})
        with np.errstate(divide="ignore", invalid="ignore"):
            e["hinf_over_sigma"] = _fin(np.float64(r["err_hinf"]) / np.float64(r["sigma_next"]))
        e["within_bt_bound"] = bool(r["err_hinf"] <= r["bt_bound"] * (1 + 1e-9))
        chans.append(e)
    top = {"file": path, "method": METHOD_NAMES.get(int(v.method), "?"),
           "horizon": HORIZON_NAMES.get(int(v.horizon), "?"), "channels": int(v.C), "max_modes": int(v.M),
           "stable": all(e["stable"] for e in chans)}
    return top, chans


def _fin(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _channel_model(m, c):
    """Channel c alone, as its own model (its kernel without the others')."""
    import convrec
    k = m.kinds[c]
    use = k > 0
    p = m.poles[c][use]
    r = m.residues[c][use]
    if p.size == 0:
        return None, p, r, k[use]
    return convrec.Model.from_modes(p[None, :], r[None, :], [m.d[c]]), p, r, k[use]


def run(args):
    check_plotting()
    formats = parse_formats(args.format)
    if args.rate is not None and not (args.rate > 0 and math.isfinite(args.rate)):
        raise UserError(f"--rate must be a positive number of Hz, not {args.rate}")
    if not (0 <= args.margin < 1):
        raise UserError(f"--margin must be in [0, 1), not {args.margin}")
    if args.model.lower().endswith(".json"):
        from .study import load_study
        if args.kernels:
            raise UserError("a study page takes no KERNELS (they are named in study.json)")
        study = load_study(args.model)
        out = prepare_outdir(args.out)
        check_outputs(out, ["index.html"] + [f"figures/study_{q}.{f}" for q in ("hinf", "l2", "time") for f in formats],
                      [args.model])
        write_study_page(out, study, formats, args.panels)
        if not args.quiet:
            print(f"wrote {os.path.join(out, 'index.html')}")
        return 0

    m = load_model(args.model)
    top, chans = model_info(m, args.model)
    C = top["channels"]
    H, rate = None, None
    if args.kernels:
        H, rate = load_kernels(args.kernels)
        if H.shape[0] != C:
            raise UserError(f"{args.kernels} has {H.shape[0]} channel{'s' if H.shape[0] != 1 else ''} but the model "
                            f"{args.model} has {C}: not the kernels of this model")
        L = H.shape[1]
        bad = [e for e in chans if e["length"] not in (0, L)]
        if bad:
            raise UserError(f"{args.kernels} has kernels of length {L} but the model {args.model} was fitted to "
                            f"length {bad[0]['length']} (channel {bad[0]['channel']}): not the kernels of this model")
    if args.rate is not None:
        rate = args.rate
    objective = "err_window" if top["horizon"] == "window" else "err_infinite"
    errs = [e[objective] if e[objective] is not None else np.nan for e in chans]
    sel, labels = parse_channels(args.channels, C, errors=errs)
    out = prepare_outdir(args.out)
    check_outputs(out, ["index.html"] + [f"figures/{n}.{f}" for n in ["channels"] + [f"channel{c}" for c in sel]
                                         for f in formats], [args.model, args.kernels])

    from . import figures
    figs = []  # (name, figure, alt)
    rec_arrays = {k: np.array([np.nan if e[k] is None else e[k] for e in chans], dtype=float)
                  for k in ("err_window", "err_infinite", "err_hinf", "sigma_next", "bt_bound")}
    figs.append(("channels", figures.channels_overview(rec_arrays, objective, [(c, labels.get(c, str(c))) for c in sel]),
                 "errors of every channel"))
    sections = []
    for c in sel:
        e = chans[c]
        L = e["length"] or (H.shape[1] if H is not None else 0)
        if L == 0:
            raise UserError(f"{args.model}: channel {c} records no kernel length; give the KERNELS")
        sub, p, r, k = _channel_model(m, c)
        g = sub.kernel(2 * L)[0] if sub is not None else np.r_[e["d"] or 0.0, np.zeros(2 * L - 1)]
        h = H[c] if H is not None else None
        hv = None
        if h is not None:
            from .study import hankel_values
            hv = hankel_values(h, max(e["order"], 1))
        ch = {"c": c, "label": labels.get(c), "N": e["order"], "method": top["method"], "horizon": top["horizon"],
              "rate": rate, "margin": args.margin, "poles": p, "residues": r, "kinds": k, "d": e["d"] or 0.0,
              "record": e, "model_kernel": g, "kernel": h, "hsv": hv}
        name = f"channel{c}"
        figs.append((name, figures.channel_figure(ch), f"channel {c}"))
        sections.append((c, name))

    # the page: written last, whole; figure files first
    written = _write_figure_files(out, figs, formats)
    body = _model_body(args, top, chans, sel, labels, figs, sections, rate, H is not None, written)
    write_atomic(os.path.join(out, "index.html"), pages.page(f"convrec report: {args.model}", body))
    _close(figs)
    if not args.quiet:
        print(f"wrote {os.path.join(out, 'index.html')}" + (f" and {len(written)} figure files" if written else ""))
    return 0


def _close(figs):
    import matplotlib.pyplot as plt
    for _, f, _ in figs:
        plt.close(f)


def _write_figure_files(out, figs, formats):
    written = []
    if not formats:
        return written
    d = os.path.join(out, "figures")
    try:
        os.makedirs(d, exist_ok=True)
    except OSError as e:
        raise UserError(f"-o {out}: cannot make {d} ({e.strerror or e})") from None
    for name, fig, _ in figs:
        for fmt in formats:
            if fmt == "png":
                data = pages.png_bytes(fig)
            else:
                buf = io.BytesIO()
                fig.savefig(buf, format=fmt, metadata={"Creator": None})
                data = buf.getvalue()
            path = os.path.join(d, f"{name}.{fmt}")
            write_atomic(path, data)
            written.append(os.path.relpath(path, out))
    return written


def _cmdline(args):
    import shlex
    return "convrec report " + " ".join(shlex.quote(a) for a in getattr(args, "argv", []))


def _model_body(args, top, chans, sel, labels, figs, sections, rate, have_kernels, written):
    E = pages.esc
    out = [f"<h1>convrec report: {E(args.model)}</h1>",
           f"<p class=note>Made by <code>{E(_cmdline(args))}</code> on {E(time.strftime('%Y-%m-%d %H:%M'))}"
           f"{'' if have_kernels else '; no kernels given: the errors are those recorded in the model, the figures show the model alone'}"
           f"{f'; sample rate {rate:g} Hz' if rate else ''}.</p>"]
    top_cols = [("file", "file", "text"), ("method", "method", "text"), ("horizon", "horizon", "text"),
                ("channels", "channels", "int"), ("max_modes", "mode slots per channel", "int"),
                ("stable", "stable", "text")]
    out.append(pages.table(top_cols, [top], "model"))
    fig_of = {name: (f, alt) for name, f, alt in figs}
    out.append("<h2>Every channel</h2>")
    objective = "window" if top["horizon"] == "window" else "infinite"
    out.append(f"<p class=note>The model was fitted on the {objective} horizon; the channels drawn below are "
               f"{', '.join(f'{c} ({labels[c]})' if c in labels else str(c) for c in sel)}. "
               "No stable model of order N has an H∞ error below σ<sub>N+1</sub>; balanced truncation guarantees "
               "at most 2Σ<sub>i&gt;N</sub>σ<sub>i</sub>.</p>")
    out.append(pages.image(fig_of["channels"][0], "errors of every channel"))
    out.append("<h2>Summary (the numbers of <code>convrec info --json</code>)</h2>")
    cols = [("channel", "channel", "int")] + INFO_COLUMNS
    out.append('<div class="scroll">' + pages.table(
        cols, chans, "summary", row_attrs=lambda r: f' data-channel="{r["channel"]}"',
        row_class=lambda r: "sel" if r["channel"] in sel else "") + "</div>")
    for c, name in sections:
        e = chans[c]
        lab = f" ({labels[c]})" if c in labels else ""
        out.append(f'<h2 id="channel{c}">Channel {c}{E(lab)}: order {e["order"]}</h2>')
        out.append(
            "<p class=note>Top: the impulse responses (linear, then in dB on a log lag axis up to 2L: the model "
            "goes on past the kernel's end), and the poles. Bottom: the magnitude responses with the error curve, "
            "whose maximum is the H∞ error; the error at order N against σ<sub>N+1</sub> (floor) and "
            "2Σσ<sub>i&gt;N</sub> (ceiling); the poles' distance to the unit circle.</p>")
        out.append(pages.image(fig_of[name][0], f"channel {c}"))
    if written:
        out.append("<h2>Figure files</h2><ul>" + "".join(f'<li><a href="{E(w)}">{E(w)}</a></li>' for w in written) + "</ul>")
    return "\n".join(out)


# ---------------------------------------------------------------- studies
def study_panels(study, mode="auto"):
    """Panels of a study page: per channel, or per family with medians."""
    chans = [c for c in study["channels"] if c.get("fits") and c.get("hinf_norm")]
    if mode == "auto":
        mode = "channel" if len(chans) <= 9 else "family"
    groups = []
    if mode == "channel":
        for c in chans:
            groups.append((f"{c['family']} channel {c['channel']} (L = {c['length']})", [c]))
    else:
        for f in study["families"]:
            cs = [c for c in chans if c["family"] == f["name"]]
            if len(cs) == 1:
                groups.append((f"{f['name']} channel {cs[0]['channel']} (L = {f['shape'][1]})", cs))
            elif cs:
                groups.append((f"{f['name']}: median of {len(cs)} channels (L = {f['shape'][1]})", cs))
    st = study["settings"]
    panels = {q: [] for q in ("hinf", "l2", "time")}
    for title, cs in groups:
        bounds = {}
        for N in st["orders"]:
            vals = [(b["sigma_next"] / c["hinf_norm"], b["hna_bound"] / c["hinf_norm"], b["bt_bound"] / c["hinf_norm"],
                     b["exact"]) for c in cs for b in c.get("bounds", []) if b["order"] == N]
            if vals:
                bounds[N] = (float(np.median([v[0] for v in vals])), float(np.median([v[1] for v in vals])),
                             float(np.median([v[2] for v in vals])), all(v[3] for v in vals))
        curves = {q: {} for q in panels}
        for hz in st["horizons"]:
            for me in st["methods"]:
                for q in panels:
                    curves[q][(hz, me)] = {}
                for N in st["orders"]:
                    fits = [(c, f) for c in cs for f in c["fits"] if f["horizon"] == hz and f["method"] == me
                            and f["order_requested"] == N and "error" not in f]
                    if not fits:
                        continue
                    hin = [f["err_hinf"] / c["hinf_norm"] for c, f in fits if f.get("err_hinf") is not None]
                    l2 = [(f["err_window"] if hz == "window" else f["err_infinite"]) for c, f in fits]
                    l2 = [x for x in l2 if x is not None]
                    curves["hinf"][(hz, me)][N] = float(np.median(hin)) if hin else None
                    curves["l2"][(hz, me)][N] = float(np.median(l2)) if l2 else None
                    curves["time"][(hz, me)][N] = float(np.median([f["time_s"] for c, f in fits]))
        for q in panels:
            panels[q].append({"title": title, "bounds": bounds if q == "hinf" else {}, "curves": curves[q]})
    return panels


def write_study_page(out, study, formats, panels_mode="auto"):
    """DIR/index.html of a study (and DIR/figures/study_*.FMT with --format)."""
    check_plotting()
    from . import figures
    from .study import summary_rows
    E = pages.esc
    panels = study_panels(study, panels_mode)
    st = study["settings"]
    figs = []
    if panels["hinf"]:
        figs.append(("study_hinf", figures.study_figure(panels["hinf"], st, "hinf"), "H-infinity error against order"))
        figs.append(("study_l2", figures.study_figure(panels["l2"], st, "l2"), "l2 error against order"))
        figs.append(("study_time", figures.study_figure(panels["time"], st, "time"), "time per fit against order"))
    written = _write_figure_files(out, figs, formats)
    nfits = sum(len(c["fits"]) for c in study["channels"])
    want = len(study["channels"]) * len(st["orders"]) * len(st["horizons"]) * len(st["methods"])
    fams = ", ".join(f"{f['name']} ({f['file']}, {f['shape'][0]} × {f['shape'][1]}, channels {_short(f['channels'])})"
                     for f in study["families"])
    import shlex
    b = [f"<h1>convrec study: {E(', '.join(f['name'] for f in study['families']))}</h1>",
         f"<p class=note>Made by <code>{E(' '.join(shlex.quote(a) for a in study.get('command', [])))}</code> on "
         f"{E(study.get('created', ''))} (convrec {E(study.get('convrec_version'))}); "
         f"{nfits} of {want} fits{'' if study.get('complete') else ' — interrupted: the page shows what was finished'}, "
         f"{study.get('elapsed_s', 0):.1f} s. Kernels: {E(fams)}. Every number is in "
         f'<a href="study.json">study.json</a>.</p>',
         "<p class=note>Floor σ<sub>N+1</sub>: no stable model of order N has a smaller H∞ error "
         "(Adamjan–Arov–Krein). Ceiling 2Σ<sub>i&gt;N</sub>σ<sub>i</sub>: what balanced truncation guarantees; "
         "Σ<sub>i&gt;N</sub>σ<sub>i</sub>: what Hankel-norm approximation guarantees. The Hankel singular values "
         "are those of the zero-padded (FIR) Hankel matrix of each kernel. Window fits are measured on the "
         "infinite horizon too: their H∞ error includes the model's response past L, which they leave free.</p>"]
    for name, f, alt in figs:
        b.append(f"<h2>{E(alt[0].upper() + alt[1:])}</h2>")
        b.append(pages.image(f, alt))
    rows = summary_rows(study)
    if rows:
        b.append("<h2>Medians over channels</h2><p class=note>Relative l2 error on the fit's own horizon, "
                 "H∞ error / σ<sub>N+1</sub> and time per fit, median over the channels of each family.</p>")
        cols = [("family", "family", "text"), ("horizon", "horizon", "text"), ("method", "method", "text"),
                ("channels", "channels", "int")]
        for N in st["orders"]:
            cols += [(f"err@{N}", f"l2 N={N}", ".2e"), (f"ratio@{N}", f"H∞/σ N={N}", ".2f"),
                     (f"time@{N}", f"s N={N}", ".3f")]
        trs = []
        for fam, hz, me, n, cells in rows:
            r = {"family": fam, "horizon": hz, "method": me, "channels": n}
            for N, (e, ra, tm, _) in cells.items():
                r[f"err@{N}"], r[f"ratio@{N}"], r[f"time@{N}"] = e, ra, tm
            trs.append(r)
        b.append('<div class="scroll">' + pages.table(cols, trs, "summary") + "</div>")
    fails = [(c, f) for c in study["channels"] for f in c["fits"] if "error" in f]
    if fails:
        b.append(f"<h2>Failed fits ({len(fails)})</h2><ul>" + "".join(
            f"<li>{E(c['family'])} channel {c['channel']}, {E(f['horizon'])}, {E(f['method'])}, N = "
            f"{f['order_requested']}: {E(f['error'])}</li>" for c, f in fails[:100]) + "</ul>")
    if written:
        b.append("<h2>Figure files</h2><ul>" + "".join(f'<li><a href="{E(w)}">{E(w)}</a></li>' for w in written) + "</ul>")
    write_atomic(os.path.join(out, "index.html"), pages.page("convrec study", "\n".join(b)))
    _close(figs)


def _short(chans):
    if len(chans) <= 8:
        return ",".join(map(str, chans))
    step = chans[1] - chans[0]
    if all(b - a == step for a, b in zip(chans, chans[1:])):
        return f"{chans[0]}..{chans[-1]}:{step}" if step > 1 else f"{chans[0]}..{chans[-1]}"
    return ",".join(map(str, chans[:6])) + f",… ({len(chans)})"
