"""Compression study of the S4D sequential-CIFAR network
(convrec.examples.s4d_scifar): every S4D layer's exact order-64 modal model
reduced to n states per channel, and the reduced network compared with the
original on natural photos and on random images.

    import convrec.examples.s4d_scifar as ex, convrec.examples.s4d_compress as sc
    net = ex.S4DClassifier.from_checkpoint("s4d_scifar.pth")
    photos, where = sc.natural_images()            # (B, 3, 32, 32) in [0, 1], and their sources
    res = sc.study(net, {"natural": photos, "random": sc.random_images(64)}, orders=(4, 8, 16, 32))
    print(sc.report(res))

The reduction of a channel is convrec.fit of the exact model's impulse
response on the training window (L = 1024, horizon "window"), i.e. what
Model.reduce(order=n) does for a whole layer, one channel per call so that
each channel's fit time is measured (and, with processes=2, two channels fit
at once in worker processes). The reduced network runs in convolution mode
with the reduced models' kernels (S4DClassifier.kernels_of), in float64, so
the differences measured are those of the compression, not of rounding; its
streaming form (StreamingClassifier(models=...)) computes the same logits.

The photos are the colour photographs that Debian packages ship (matplotlib's
sample data, scipy's `face`, scikit-image's data folder), each cut into its
central square and tiles of it (a 1x1, 2x2 and 3x3 grid), every piece resized
to 32x32 by area averaging. They are not CIFAR-10 pictures and the network's
classes for them mean little: the study measures agreement with the
uncompressed network, not accuracy.
"""
import copy
import importlib.util
import multiprocessing
import os
import statistics
import time
import warnings

import numpy as np
import torch

import convrec

# (file in the package's data folder, Debian package): colour photographs only
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png", "rocket.jpg",
                  "hubble_deep_field.jpg", "retina.jpg", "ihc.png")


def _photo_sources():
    """[(name, Debian package, loader)] for the photos present here."""
    out = []
    try:
        import matplotlib
        p = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
        if os.path.exists(p):
            out.append(("matplotlib sample_data/grace_hopper.jpg", "python-matplotlib-data", p))
    except ImportError:
        pass
    try:
        import scipy.misc
        if hasattr(scipy.misc, "face"):
            out.append(("scipy.misc.face()", "python3-scipy", "scipy.misc.face"))
    except ImportError:
        pass
    # scikit-image's data files are read directly: importing skimage is slow and not needed
    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.submodule_search_locations:
        d = os.path.join(list(spec.submodule_search_locations)[0], "data")
        for f in SKIMAGE_PHOTOS:
            if os.path.exists(os.path.join(d, f)):
                out.append((f"skimage data/{f}", "python3-skimage", os.path.join(d, f)))
    return out


def _load(src):
    from PIL import Image
    if src == "scipy.misc.face":
        import scipy.misc
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated in scipy >= 1.10, still bundled
            return Image.fromarray(scipy.misc.face())
    with Image.open(src) as im:
        return im.convert("RGB")


def crops(image, grids=(1, 2, 3), size=32):
    """A PIL RGB image -> (n, 3, size, size) float64 in [0, 1]: its central
    square, and that square cut into g x g tiles for each g in grids (the
    1x1 grid is the square itself), each resized to size x size by area
    averaging (PIL's BOX filter)."""
    from PIL import Image
    w, h = image.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    out = []
    for g in grids:
        t = s // g
        for i in range(g):
            for j in range(g):
                box = (left + j * t, top + i * t, left + (j + 1) * t, top + (i + 1) * t)
                tile = image.resize((size, size), Image.BOX, box=box)
                out.append(np.asarray(tile, dtype=np.float64).transpose(2, 0, 1) / 255.0)
    return torch.from_numpy(np.stack(out))


def natural_images(grids=(1, 2, 3)):
    """The Debian-packaged colour photos found here, as 32x32 crops:
    (images (B, 3, 32, 32) float64 in [0, 1], [(photo, package, crops)]).
    Raises LookupError when none is installed (python3-matplotlib,
    python3-scipy, python3-skimage ship them; python3-pil reads them)."""
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise LookupError("natural_images: needs PIL (Debian: python3-pil)") from None
    imgs, where = [], []
    for name, pkg, src in _photo_sources():
        c = crops(_load(src), grids)
        imgs.append(c)
        where.append((name, pkg, len(c)))
    if not imgs:
        raise LookupError("natural_images: no photo found (Debian: python3-matplotlib, python3-scipy "
                          "or python3-skimage)")
    return torch.cat(imgs), where


def random_images(n, seed=0):
    """n images of independent uniform [0, 1] pixels, (n, 3, 32, 32) float64."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------------------
# Reduction


def _fit_channel(task):
    c, h, order = task
    t = time.perf_counter()
    m = convrec.fit(h, order=order, horizon="window", threads=1)
    return c, time.perf_counter() - t, m


def reduce_layer(model, order, length=None, channels=None, processes=1):
    """Reduce the channels of one layer's model to `order` states each, one
    channel per fit (threads=1), as Model.reduce(order=order) would fit them:
    convrec.fit of the model's impulse response at `length` (default: the
    length its records refer to), horizon "window".

    Returns a dict: channels (indices), models (one 1-channel convrec.Model
    each), kernels ((len(channels), length) float64 impulse responses of the
    reduced models), records (the fit records as arrays), seconds (each
    fit's time) and wall (the whole call). processes > 1 fits that many
    channels at once in spawned worker processes."""
    if length is None:
        length = int(model.records()["length"].max())
    channels = list(range(model.channels)) if channels is None else [int(c) for c in channels]
    h = model.kernel(length)
    tasks = [(c, np.ascontiguousarray(h[c]), int(order)) for c in channels]
    t0 = time.perf_counter()
    if processes > 1 and len(tasks) > 1:
        # spawn, not fork: the parent's OpenMP (libconvrec, torch) does not survive a fork
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            done = pool.map(_fit_channel, tasks, chunksize=1)
    else:
        done = [_fit_channel(t) for t in tasks]
    wall = time.perf_counter() - t0
    models = [m for _, _, m in done]
    recs = [m.records() for m in models]
    return {"channels": channels, "models": models,
            "kernels": np.stack([m.kernel(length)[0] for m in models]),
            "records": {k: np.array([r[k][0] for r in recs]) for k in recs[0]},
            "seconds": np.array([s for _, s, _ in done]), "wall": wall}


def with_channels(base, channels, models):
    """A convrec.Model equal to `base` except that channel channels[i] is the
    1-channel model models[i] (e.g. reduce_layer's); records are not carried.
    For streaming a network with reduced layers (StreamingClassifier(models=))."""
    if len(channels) != len(models):
        raise ValueError(f"{len(channels)} channels and {len(models)} models")
    parts = [(base, c) for c in range(base.channels)]
    for c, m in zip(channels, models):
        if m.channels != 1:
            raise ValueError(f"channel {c}: a model of {m.channels} channels, not 1")
        parts[int(c)] = (m, 0)
    M = max(m.modes for m, _ in parts)
    poles = np.full((len(parts), M), np.nan, dtype=np.complex128)
    res = np.zeros((len(parts), M), dtype=np.complex128)
    d = np.empty(len(parts))
    cache = {}
    for c, (m, r) in enumerate(parts):
        if id(m) not in cache:
            cache[id(m)] = (m.kinds, m.poles, m.residues, m.d)
        kinds, p, q, dd = cache[id(m)]
        use = kinds[r] != 0
        n = int(use.sum())
        poles[c, :n], res[c, :n], d[c] = p[r][use], q[r][use], dd[r]
    return convrec.Model.from_modes(poles, res, d)


# ---------------------------------------------------------------------------
# The study


def _med(x):
    x = [float(v) for v in x if np.isfinite(v)]
    return statistics.median(x) if x else float("nan")


def _max(x):
    x = [float(v) for v in x if np.isfinite(v)]
    return max(x) if x else float("nan")


def logit_metrics(logits, ref):
    """Per-image relative l2 error of the logits (median, max), largest
    absolute logit difference, and the fraction of images whose top class
    agrees with ref's."""
    e = (torch.linalg.norm(logits - ref, dim=1) / torch.linalg.norm(ref, dim=1)).tolist()
    return {"rel_median": _med(e), "rel_max": _max(e),
            "abs_max": float((logits - ref).abs().max()),
            "agree": float((logits.argmax(1) == ref.argmax(1)).double().mean()),
            "n": int(ref.shape[0])}


def kernel_metrics(red):
    """Per-layer kernel errors of reduce_layer's result next to sigma_{N+1}
    of the kernel's Hankel: err_window (relative l2 over the window),
    sigma_next / ||h|| (relative, the same scale), and the ratio of the
    absolute l2 error to sigma_{N+1}; median and max over the channels; the
    error over all k >= 0 (the reduced model's tail beyond the window
    included, which the window fit does not control) and the largest |pole|;
    the fit times."""
    r = red["records"]
    err, sig, hn = r["err_window"], r["sigma_next"], r["h_norm"]
    ratio = err * hn / sig
    s = red["seconds"]
    slow = np.argsort(s)[::-1][:5]
    inf = r["err_infinite"]
    rho = np.array([m.spectral_radius()[0] for m in red["models"]])
    return {"channels": len(red["channels"]),
            "err_median": _med(err), "err_max": _max(err),
            "err_infinite_median": _med(inf), "err_infinite_max": _max(inf),
            "radius_max": _max(rho), "radius_max_channel": int(red["channels"][int(np.argmax(rho))]),
            "sigma_rel_median": _med(sig / hn), "sigma_rel_max": _max(sig / hn),
            "ratio_median": _med(ratio), "ratio_max": _max(ratio),
            "seconds_sum": float(s.sum()), "seconds_median": _med(s), "wall": float(red["wall"]),
            "slowest": [(int(red["channels"][i]), float(s[i])) for i in slow],
            "over_1s": int((s > 1).sum()), "seconds": [float(v) for v in s]}


@torch.no_grad()
def study(net, image_sets, orders=(4, 8, 16, 32), layers=None, channels=None, length=1024,
          processes=1, per_layer=False, log=None):
    """Reduce the given layers (default all) of `net` (an S4DClassifier) to
    each order n (the given channels of each, default all; the rest stay
    exact), and compare the logits with the original network's on every
    image set ({name: (B, 3, 32, 32) in [0, 1]}). per_layer: also the
    network with one layer reduced at a time. log: a function of one string
    for progress. Returns a JSON-able dict (see report)."""
    from . import s4d_scifar as ex
    log = log or (lambda s: None)
    layers = list(range(len(net.s4_layers))) if layers is None else [int(i) for i in layers]
    net64 = copy.deepcopy(net).double().eval()
    models = net64.layer_models(length)
    exact = net64.kernels_of(models, length)
    xs = {k: ex.normalize(v.double()) for k, v in image_sets.items()}
    ref = {k: net64(x, kernels=exact) for k, x in xs.items()}
    out = {"length": length, "layers": layers, "channels": channels, "orders": list(orders),
           "sets": {k: {"n": int(x.shape[0]),
                        "classes": sorted(set(ref[k].argmax(1).tolist()))} for k, x in xs.items()},
           "results": []}
    for n in orders:
        ks = list(exact)
        row = {"order": int(n), "kernels": {}, "logits": {}, "per_layer": {}}
        for i in layers:
            red = reduce_layer(models[i], n, length, channels, processes)
            k = ks[i].clone()
            k[red["channels"]] = torch.from_numpy(red["kernels"])
            k[red["channels"], 0] -= net64.s4_layers[i].D[red["channels"]]
            ks[i] = k
            row["kernels"][i] = kernel_metrics(red)
            log(f"order {n} layer {i}: {row['kernels'][i]['wall']:.1f} s, median err "
                f"{row['kernels'][i]['err_median']:.3g}")
            if per_layer:
                one = list(exact)
                one[i] = k
                row["per_layer"][i] = {s: logit_metrics(net64(x, kernels=one), ref[s]) for s, x in xs.items()}
        row["logits"] = {s: logit_metrics(net64(x, kernels=ks), ref[s]) for s, x in xs.items()}
        out["results"].append(row)
    return out


def report(res, sources=None):
    """The study's result as text tables (markdown)."""
    L = []
    sets = list(res["sets"])
    for s in sets:
        L.append(f"# {s}: {res['sets'][s]['n']} images; the original network predicts "
                 f"{len(res['sets'][s]['classes'])} distinct classes {res['sets'][s]['classes']}")
    if sources:
        L.append("# photos: " + "; ".join(f"{n} ({p}, {c} crops)" for n, p, c in sources))
    ch = "all" if res["channels"] is None else f"channels {res['channels']}"
    L.append(f"# layers {res['layers']} reduced ({ch}); window L = {res['length']}")
    L.append("")
    L.append("Logits, all listed layers reduced to N states per channel (float64, convolution mode):")
    L.append("")
    L.append("| N | images | rel. logit error median | max | max abs | top class agrees |")
    L.append("|---|---|---|---|---|---|")
    for r in res["results"]:
        for s in sets:
            m = r["logits"][s]
            L.append(f"| {r['order']} | {s} ({m['n']}) | {m['rel_median']:.2e} | {m['rel_max']:.2e} | "
                     f"{m['abs_max']:.2e} | {100 * m['agree']:.1f}% |")
    if any(r["per_layer"] for r in res["results"]):
        L.append("")
        L.append("One layer reduced at a time (rel. logit error median / top class agrees):")
        L.append("")
        L.append("| N | layer | " + " | ".join(sets) + " |")
        L.append("|---|---|" + "---|" * len(sets))
        for r in res["results"]:
            for i, d in r["per_layer"].items():
                L.append(f"| {r['order']} | {i} | " + " | ".join(
                    f"{d[s]['rel_median']:.2e} / {100 * d[s]['agree']:.1f}%" for s in sets) + " |")
    L.append("")
    L.append("Kernel errors per layer (err = relative l2 over the window; sigma = sigma_{N+1} of the "
             "kernel's Hankel / ||h||; ratio = absolute l2 error / sigma_{N+1}; err inf = the error over "
             "all k >= 0, the tail beyond the window included; |pole| = the largest, with its channel):")
    L.append("")
    L.append("| N | layer | err median | err max | sigma median | sigma max | ratio median | ratio max "
             "| err inf max | max pole (ch) | fit s (sum) | wall s | slowest channels (s) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in res["results"]:
        for i, k in r["kernels"].items():
            slow = ", ".join(f"{c}: {t:.1f}" for c, t in k["slowest"][:3])
            L.append(f"| {r['order']} | {i} | {k['err_median']:.3g} | {k['err_max']:.3g} | "
                     f"{k['sigma_rel_median']:.3g} | {k['sigma_rel_max']:.3g} | {k['ratio_median']:.3g} | "
                     f"{k['ratio_max']:.3g} | {k['err_infinite_max']:.3g} | {k['radius_max']:.8f} ({k['radius_max_channel']}) | "
                     f"{k['seconds_sum']:.1f} | {k['wall']:.1f} | {slow} |")
    return "\n".join(L) + "\n"
