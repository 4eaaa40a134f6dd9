"""The figures of `convrec report` and `convrec study` (matplotlib, Agg).

Every axis says its unit, every curve is in a legend, and a log scale is
said in the axis label. Errors against the Hankel-singular-value bounds:
sigma_{N+1} is the floor no stable order-N model goes below (H-infinity
error), 2 sum_{i>N} sigma_i the ceiling balanced truncation guarantees.
"""
import numpy as np

METHOD_COLORS = {"auto": "C0", "bt": "C1", "hna": "C2", "pencil": "C3"}
HORIZON_STYLE = {"infinite": ("-", "o"), "window": ("--", "s")}
FLOOR = dict(color="black", lw=2.0)
HNA = dict(color="0.35", lw=1.2, ls=":")
CEIL = dict(color="0.35", lw=1.5, ls="--")
# the same bounds when only some singular values are known: upper bounds
HNA_UB = dict(color="0.6", lw=1.2, ls=(0, (1, 3)))
CEIL_UB = dict(color="0.6", lw=1.5, ls="-.")
TINY = 1e-300


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 10,
                         "legend.fontsize": 8, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def db(x, ref=1.0):
    return 20.0 * np.log10(np.maximum(np.abs(x), TINY) / ref)


def model_response(poles, residues, kinds, d, w):
    """H^(e^iw) of one channel of a modal model, exactly (no truncation):
    d + sum over modes of r z^-1 / (1 - lambda z^-1) (and the conjugate for pairs)."""
    zi = np.exp(-1j * w)
    H = np.full(w.shape, complex(d))
    for p, r, k in zip(poles, residues, kinds):
        if k == 0:
            continue
        H += r * zi / (1 - p * zi)
        if k == 2:
            H += np.conj(r) * zi / (1 - np.conj(p) * zi)
    return H


def _thin_log(n_points, keep=6000):
    """Indices 1..n_points-1 spaced evenly on a log axis (all when few)."""
    if n_points - 1 <= keep:
        return np.arange(1, n_points)
    return np.unique(np.geomspace(1, n_points - 1, keep).astype(np.int64))


def channel_figure(ch):
    """The six panels of one channel of a report. ch: dict with
    c, label, N, method, horizon, rate, margin, poles, residues, kinds, d,
    record (dict), model_kernel (to 2L), kernel (or None), hsv (or None)."""
    plt = _plt()
    fig, ax = plt.subplots(2, 3, figsize=(13.5, 7.6))
    rate, h, g = ch["rate"], ch["kernel"], ch["model_kernel"]
    L = ch["record"]["length"] or (h.size if h is not None else g.size // 2)
    title = f"channel {ch['c']}" + (f" ({ch['label']})" if ch.get("label") else "")
    title += f": order N = {ch['N']}, method {ch['method']}, horizon {ch['horizon']}"
    fig.suptitle(title, fontsize=11)
    if rate:
        tscale, tunit = 1e3 / rate, "time (ms)"
    else:
        tscale, tunit = 1.0, "lag k (samples)"

    # (a) impulse responses, linear
    a = ax[0, 0]
    k = np.arange(L)
    if h is not None:
        a.plot(k * tscale, h, color="C0", lw=1.0, label="kernel h", zorder=3)
    a.plot(k * tscale, g[:L], color="C1", lw=1.0, ls="--" if h is not None else "-", label="model ĥ", zorder=4)
    if h is not None:
        a.plot(k * tscale, h - g[:L], color="C3", lw=0.8, alpha=0.8, label="error h − ĥ", zorder=2)
    a.set_xlabel(tunit)
    a.set_ylabel("amplitude (kernel units)")
    a.set_title("impulse response, k < L")
    a.legend(loc="upper right")

    # (b) |impulse responses| in dB on a log lag axis, the model up to 2L
    a = ax[0, 1]
    T = g.size
    kk = _thin_log(T)
    ref = np.max(np.abs(h)) if h is not None and np.any(h) else max(np.max(np.abs(g)), TINY)
    if h is not None:
        kin = kk[kk < L]
        a.plot(kin * tscale, db(h[kin], ref), color="C0", lw=0.8, label="kernel |h| (zero for k ≥ L)", zorder=3)
    a.plot(kk * tscale, db(g[kk], ref), color="C1", lw=0.8, label="model |ĥ|", zorder=4)
    if h is not None:
        e = np.concatenate([h - g[:L], -g[L:]])
        ke = kk if ch["horizon"] == "infinite" else kk[kk < L]
        a.plot(ke * tscale, db(e[ke], ref), color="C3", lw=0.8, alpha=0.8, zorder=2,
               label="error |h − ĥ|" + (" (k ≥ L counts: infinite horizon)" if ch["horizon"] == "infinite"
                                         else " on k < L (window horizon)"))
    a.axvline(L * tscale, color="0.4", lw=1.0, ls=":", label=f"end of the kernel, k = L = {L}")
    a.set_xscale("log")
    a.set_xlabel(tunit + ", log scale")
    a.set_ylabel("magnitude (dB re max |h|)")
    a.set_title("impulse response magnitude, k ≥ 1")
    lo = np.percentile(db(g[kk], ref), 1) if kk.size else -100
    a.set_ylim(max(lo - 40, -320), 10)
    a.legend(loc="best", fontsize=7)

    # (c) poles in the unit disk
    a = ax[0, 2]
    p = ch["poles"][ch["kinds"] > 0]
    kinds = ch["kinds"][ch["kinds"] > 0]
    t = np.linspace(0, 2 * np.pi, 721)
    a.plot(np.cos(t), np.sin(t), color="black", lw=1.0, label="unit circle |z| = 1")
    rad = float(np.max(np.abs(p))) if p.size else 0.0
    if ch.get("margin") is not None:
        rm = 1 - ch["margin"]
        a.plot(rm * np.cos(t), rm * np.sin(t), color="C2", lw=1.0, ls="--",
               label=f"margin circle |z| = 1 − {ch['margin']:g}")
    if p.size:
        a.plot(rad * np.cos(t), rad * np.sin(t), color="0.5", lw=0.8, ls=":",
               label=f"max |λ| = {rad:.6f}")
        allp = np.concatenate([p, np.conj(p[kinds == 2])])
        a.plot(allp.real, allp.imag, "x", color="C1", ms=6, mew=1.4, label=f"poles λ ({allp.size})")
    a.set_aspect("equal")
    a.set_xlim(-1.12, 1.12)
    a.set_ylim(-1.12, 1.12)
    a.set_xlabel("Re λ")
    a.set_ylabel("Im λ")
    a.set_title("poles in the unit disk")
    a.legend(loc="lower left", fontsize=7)

    # (d) magnitude responses in dB on a log-frequency axis
    a = ax[1, 0]
    n = max(8 * L, 1024)
    w = 2 * np.pi * np.arange(n // 2 + 1) / n
    Hm = model_response(ch["poles"], ch["residues"], ch["kinds"], ch["d"], w)
    f = w / (2 * np.pi) * (rate if rate else 1.0)
    fi = _thin_log(w.size)
    a.plot(f[fi], db(Hm[fi]), color="C1", lw=1.0, ls="--" if h is not None else "-", label="model |Ĥ|", zorder=4)
    if h is not None:
        Hk = np.fft.rfft(h, n)
        E = np.abs(Hk - Hm)
        a.plot(f[fi], db(Hk[fi]), color="C0", lw=1.0, label="kernel |H|", zorder=3)
        a.plot(f[fi], db(E[fi]), color="C3", lw=0.8, alpha=0.8, zorder=2, label=f"error |H − Ĥ| (max {np.max(E):.3g})")
    sig = ch["record"].get("sigma_next")
    if sig and sig > 0:
        a.axhline(db(sig), color="black", lw=1.2, ls=":",
                  label=f"$\\sigma_{{N+1}}$ = {sig:.3g}: no stable order-{ch['N']} model has a smaller max error")
    a.set_xscale("log")
    a.set_xlabel(("frequency (Hz)" if rate else "frequency (cycles/sample)") + ", log scale")
    a.set_ylabel("magnitude (dB re 1)")
    a.set_title("magnitude response")
    a.legend(loc="best", fontsize=7)

    # (e) Hankel singular values: floor, ceilings and the achieved error
    a = ax[1, 1]
    rec, N = ch["record"], ch["N"]
    hv = ch.get("hsv")
    if hv is not None and len(hv["values"]):
        from .study import bounds_at
        s = np.asarray(hv["values"])
        top = int(min(hv["rank_bound"], max(3 * N + 8, 32), s.size))
        Ns = np.arange(0, top)
        b = [bounds_at(hv, int(x)) for x in Ns]
        fl = np.array([x["sigma_next"] for x in b])
        hn = np.array([x["hna_bound"] for x in b])
        bt = np.array([x["bt_bound"] for x in b])
        ub = "" if all(x["exact"] for x in b) else " (upper bound)"
        pos = fl > 0
        a.plot(Ns[pos], fl[pos], ".-", ms=3, **FLOOR, label=r"floor $\sigma_{N+1}$ (Adamjan-Arov-Krein)")
        a.plot(Ns[hn > 0], hn[hn > 0], **(HNA_UB if ub else HNA),
               label=r"$\Sigma_{i>N}\,\sigma_i$ (Hankel-norm guarantee)" + ub)
        a.plot(Ns[bt > 0], bt[bt > 0], **(CEIL_UB if ub else CEIL),
               label=r"ceiling $2\Sigma_{i>N}\,\sigma_i$ (balanced truncation)" + ub)
    else:
        a.plot([N], [rec["sigma_next"]], "_", ms=20, mew=2, color="black", label=r"floor $\sigma_{N+1}$ (model record)")
        a.plot([N], [rec["bt_bound"]], "_", ms=20, mew=2, color="0.35", label=r"ceiling $2\Sigma_{i>N}\,\sigma_i$ (model record)")
    a.plot([N], [rec["err_hinf"]], "*", ms=13, color="C3", mec="black",
           label=f"achieved ‖H − Ĥ‖∞ = {rec['err_hinf']:.3g} at N = {N}")
    a.axvline(N, color="C3", lw=0.6, ls=":")
    a.set_yscale("log")
    a.set_xlabel("order N (real state dimension)")
    a.set_ylabel("H∞ error (kernel units), log scale")
    a.set_title("error against the Hankel bounds")
    a.legend(loc="upper right", fontsize=7)

    # (f) the poles near the unit circle: distance to it against frequency
    a = ax[1, 2]
    if p.size:
        ang = np.abs(np.angle(p))
        fx = ang / (2 * np.pi) * (rate if rate else 1.0)
        dist = np.maximum(1 - np.abs(p), TINY)
        a.plot(fx[kinds == 2], dist[kinds == 2], "x", color="C1", ms=6, mew=1.4, label="conjugate pair")
        if np.any(kinds == 1):
            a.plot(fx[kinds == 1], dist[kinds == 1], "+", color="C4", ms=8, mew=1.4, label="real pole")
    if ch.get("margin") is not None and ch["margin"] > 0:
        a.axhline(ch["margin"], color="C2", lw=1.0, ls="--", label=f"margin {ch['margin']:g}")
    a.set_yscale("log")
    a.set_xlabel("pole frequency |arg λ| " + ("(Hz)" if rate else "(cycles/sample)"))
    a.set_ylabel("1 − |λ|, log scale")
    a.set_title("distance of the poles to the unit circle")
    from matplotlib.ticker import MaxNLocator
    a.xaxis.set_major_locator(MaxNLocator(5))
    a.legend(loc="upper left", fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    return fig


def channels_overview(records, objective, selected):
    """Every channel of a model: its relative l2 errors and H-inf / sigma_N+1."""
    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(13.5, 3.6))
    C = records["err_window"].size
    c = np.arange(C)
    ms = 4 if C <= 64 else 2
    a = ax[0]
    for key, col, lab in (("err_window", "C0", "window l2 error (k < L)"), ("err_infinite", "C1", "infinite l2 error (k ≥ 0)")):
        v = records[key]
        ok = np.isfinite(v) & (v > 0)
        a.plot(c[ok], v[ok], "o", ms=ms + (2 if key == "err_window" else 0), color=col,
               mfc="none" if key == "err_window" else col,
               label=lab + (" — the fitted objective" if key == objective else ""))
    for s, lab in selected:
        a.axvline(s, color="C3", lw=0.8, ls=":")
        a.annotate(lab, (s, 1), xycoords=("data", "axes fraction"), fontsize=7, color="C3", ha="center", va="bottom")
    a.set_yscale("log")
    a.set_xlabel("channel")
    a.set_ylabel("relative l2 error ‖h − ĥ‖/‖h‖, log scale")
    a.legend(loc="best", fontsize=7)
    a = ax[1]
    sig = records["sigma_next"]
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = records["err_hinf"] / sig
        r2 = records["bt_bound"] / sig
    ok = np.isfinite(r1) & (r1 > 0)
    a.plot(c[ok], r1[ok], "o", ms=ms, color="C3", label=r"achieved ‖H − Ĥ‖∞ / $\sigma_{N+1}$")
    ok2 = np.isfinite(r2) & (r2 > 0)
    a.plot(c[ok2], r2[ok2], "_", ms=7, color="0.35", label=r"ceiling $2\Sigma_{i>N}\,\sigma_i$ / $\sigma_{N+1}$")
    a.axhline(1.0, **FLOOR, label=r"floor: 1 ($\sigma_{N+1}$ itself)")
    a.set_yscale("log")
    a.set_xlabel("channel")
    a.set_ylabel(r"ratio to $\sigma_{N+1}$, log scale")
    a.legend(loc="best", fontsize=7)
    fig.suptitle("every channel", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


# ---------------------------------------------------------------- studies
def _grid(n):
    ncols = 1 if n == 1 else 2 if n in (2, 4) else 3
    nrows = (n + ncols - 1) // ncols
    return nrows, ncols


def study_figure(panels, settings, quantity):
    """Error (or time) against order, one panel per channel or family.
    panels: list of dicts with title, bounds {order: (floor, hna, bt, exact)},
    curves {(horizon, method): {order: value}}. quantity: 'hinf', 'l2' or 'time'."""
    plt = _plt()
    nrows, ncols = _grid(len(panels))
    nentries = (3 if quantity == "hinf" else 0) + len(settings["horizons"]) * len(settings["methods"])
    width = max(4.6 * ncols, 9.2)
    legcols = 2 if width < 12 else 3
    legrows = (nentries + legcols - 1) // legcols
    height = 3.3 * nrows + 0.5 + 0.21 * legrows
    fig, axs = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    handles = {}
    for i, pn in enumerate(panels):
        a = axs[i // ncols][i % ncols]
        if quantity == "hinf" and pn["bounds"]:
            Ns = sorted(pn["bounds"])
            fl = np.array([pn["bounds"][N][0] for N in Ns], dtype=float)
            hn = np.array([pn["bounds"][N][1] for N in Ns], dtype=float)
            bt = np.array([pn["bounds"][N][2] for N in Ns], dtype=float)
            exact = all(pn["bounds"][N][3] for N in Ns)
            ub = "" if exact else " (upper bound)"
            ok = np.isfinite(fl) & np.isfinite(bt) & (fl > 0) & (bt > 0)
            if np.any(ok):
                a.fill_between(np.array(Ns)[ok], fl[ok], bt[ok], color="0.85", lw=0)
            handles["floor"] = a.plot(np.array(Ns)[fl > 0], fl[fl > 0], **FLOOR,
                                      label=r"floor $\sigma_{N+1}$ (no stable order-N model below)")[0]
            handles["hna" + ub] = a.plot(np.array(Ns)[hn > 0], hn[hn > 0], **(HNA if exact else HNA_UB),
                                         label=r"$\Sigma_{i>N}\,\sigma_i$ (Hankel-norm guarantee)" + ub)[0]
            handles["bt" + ub] = a.plot(np.array(Ns)[bt > 0], bt[bt > 0], **(CEIL if exact else CEIL_UB),
                                        label=r"ceiling $2\Sigma_{i>N}\,\sigma_i$ (balanced-truncation guarantee)" + ub)[0]
        for (hz, me), vals in pn["curves"].items():
            Ns = sorted(N for N, v in vals.items() if v is not None and v > 0)
            if not Ns:
                continue
            ls, mk = HORIZON_STYLE[hz]
            ln = a.plot(Ns, [vals[N] for N in Ns], ls=ls, marker=mk, ms=4, lw=1.2, color=METHOD_COLORS[me],
                        mfc="none" if hz == "window" else METHOD_COLORS[me], label=f"{me}, {hz} horizon")[0]
            handles[(hz, me)] = ln
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        a.set_title(pn["title"], fontsize=9)
        a.set_xlabel("order N (real state dimension), log scale")
        a.set_ylabel({"hinf": "‖H − Ĥ‖∞ / ‖H‖∞, log scale",
                      "l2": "relative l2 error (own horizon), log scale",
                      "time": "time per fit (s), log scale"}[quantity])
        orders = settings["orders"]
        a.set_xticks(orders)
        a.set_xticklabels([str(N) for N in orders])
        a.minorticks_off()
    for j in range(len(panels), nrows * ncols):
        axs[j // ncols][j % ncols].set_visible(False)
    order = [k for k in ("floor",) if k in handles] + [k for k in handles if isinstance(k, str) and k.startswith("hna")] + \
            [k for k in handles if isinstance(k, str) and k.startswith("bt")] + \
            [(hz, me) for hz in settings["horizons"] for me in settings["methods"] if (hz, me) in handles]
    fig.legend([handles[k] for k in order], [handles[k].get_label() for k in order], loc="lower center",
               ncol=legcols, fontsize=8, frameon=False)
    head = {"hinf": "H∞ error against order, between the Hankel floor and ceiling (relative to ‖H‖∞)",
            "l2": "relative l2 error against order (window fits: k < L; infinite fits: all k ≥ 0)",
            "time": "time per fit against order (one channel, one thread)"}[quantity]
    fig.suptitle(head, fontsize=11)
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.15 / width, top=1 - 0.6 / height,
                        bottom=(0.21 * legrows + 0.6) / height, hspace=0.55, wspace=0.3)
    return fig
