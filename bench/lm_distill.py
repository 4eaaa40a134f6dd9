#!/usr/bin/env python3
"""Distil the committed Hyena-style language model (examples/hyena_lm.pt,
convrec.examples.hyena_lm) into convrec recurrences and measure, in one run:

- per order N in {4, 8, 16, 32} (window objective), and per tolerance with
  orders chosen per channel: the fit time, per layer the filters' relative
  l2 errors next to sigma_{N+1} / ||h||, the held-out perplexity, and the
  agreement of the next-token distributions with the convolution model
  (mean KL(conv || distilled) in nats, top-1 agreement);
- generation throughput, one stream and a batch of 16, at contexts 512 and
  2048: tokens per second of the distilled model (one step per token after
  the prompt) against the convolution model recomputed over the whole
  prefix for each token (what a generator without a recurrence or cache
  does), and against the convolution model with cached activations (one dot
  product with the history per channel and token); and the prefill of the
  prompt by the recurrences against one FFT convolution of the whole prompt;
- a long generation in float32: 10^5 sampled tokens, step by step, then the
  same tokens teacher-forced through the float64 distilled model: the
  float32 logits' relative error per stretch of 10^4 tokens (drift would
  make it grow) and the largest state magnitude.

Everything runs in float32 as the model was trained, except the float64
reference of the long run. Held-out text: the last 10% of each file of
/usr/share/common-licenses, in windows of L = 2048 tokens.

    build/python-venv/bin/python bench/lm_distill.py --json docs/results/lm_distill.json \\
        > docs/results/lm_distill.txt

About 10 minutes on 2 cores (--quick: orders 4 and 16, 10^4 tokens, fewer
timings: a check that it runs).
"""
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
from torch.nn import functional as F

import convrec
import convrec.examples.hyena_lm as hl

HERE = os.path.dirname(os.path.abspath(__file__))


def log(*a):
    print(*a, flush=True)


@torch.no_grad()
def logits_windows(model, xs, batch=4):
    return torch.cat([model(xs[i:i + batch]) for i in range(0, xs.shape[0], batch)])


def agreement(ref, got, ys):
    """perplexity of got, mean KL(ref || got), top-1 agreement; logits (W, T, V)."""
    lr = F.log_softmax(ref.to(torch.float64), -1)
    lg = F.log_softmax(got.to(torch.float64), -1)
    nll = float(F.nll_loss(lg.reshape(-1, hl.VOCAB), ys.reshape(-1)))
    kl = float((lr.exp() * (lr - lg)).sum(-1).mean())
    top1 = float((ref.argmax(-1) == got.argmax(-1)).to(torch.float64).mean())
    return math.exp(nll), kl, top1


def layer_records(models):
    out = []
    for m in models:
        r = m.records()
        rel_sigma = r["sigma_next"] / np.maximum(r["h_norm"], 1e-300)
        out.append({"err_median": float(np.median(r["err_window"])), "err_max": float(r["err_window"].max()),
                    "sigma_rel_median": float(np.median(rel_sigma)),
                    "orders": [int(o) for o in r["order"]],
                    "order_min": int(r["order"].min()), "order_median": float(np.median(r["order"])),
                    "order_max": int(r["order"].max())})
    return out


def timed(fn, reps=3):
    fn()
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


@torch.no_grad()
def step_time(gen, prompt, steps):
    """Seconds per token of gen (prefill/step) over `steps` greedy steps after the prompt."""
    logits, st = gen.prefill(prompt)
    tok = logits.argmax(-1)
    t = time.perf_counter()
    for _ in range(steps):
        logits, st = gen.step(tok, st)
        tok = logits.argmax(-1)
    return (time.perf_counter() - t) / steps


@torch.no_grad()
def throughput(lm, rec, held, contexts, batches, steps, reps):
    cached = hl.CachedConvLM(lm)
    kernels = lm.kernels()
    rows = []
    for B in batches:
        for c in contexts:
            prompt = torch.stack([held[i * 97:i * 97 + c] for i in range(B)])
            t_rec = min(step_time(rec, prompt, steps) for _ in range(reps))
            # the cache holds at most L tokens: time the steps that end at c
            t_cached = min(step_time(cached, prompt[:, :c - steps], steps) for _ in range(reps))
            # one convolution-mode pass over the prefix per token (at context c)
            t_conv = timed(lambda: lm(prompt, kernels=kernels), reps)
            t_pre_rec = timed(lambda: rec.prefill(prompt, method="recurrence"), reps)
            t_pre_fft = timed(lambda: rec.prefill(prompt, method="fft"), reps)
            row = {"batch": B, "context": c,
                   "recurrence_tok_s": B / t_rec, "conv_recompute_tok_s": B / t_conv,
                   "conv_cached_tok_s": B / t_cached,
                   "speedup_vs_recompute": t_conv / t_rec, "speedup_vs_cached": t_cached / t_rec,
                   "prefill_scan_s": t_pre_rec, "prefill_fft_s": t_pre_fft, "conv_pass_s": t_conv}
            rows.append(row)
            log(f"{B:>5} {c:>7} {row['recurrence_tok_s']:>12.0f} {row['conv_recompute_tok_s']:>12.1f} "
                f"{row['speedup_vs_recompute']:>8.1f}x {row['conv_cached_tok_s']:>10.0f} "
                f"{row['speedup_vs_cached']:>7.2f}x {t_pre_rec * 1e3:>9.1f} {t_pre_fft * 1e3:>9.1f} "
                f"{t_conv * 1e3:>9.1f}")
    return rows


@torch.no_grad()
def long_run(lm, models, ntok, stretch, seed):
    rec32 = hl.RecurrentLM(lm, models, torch.float32)
    g = torch.Generator().manual_seed(seed)
    prompt = torch.tensor([list(b"GNU GENERAL PUBLIC LICENSE\n")], dtype=torch.int64)
    logits, st = rec32.prefill(prompt)
    toks = torch.empty(ntok, dtype=torch.int64)
    got = torch.empty(ntok, hl.VOCAB, dtype=torch.float32)
    smax = []
    t0 = time.perf_counter()
    for t in range(ntok):
        tok = hl.sample(logits, 1.0, g)
        toks[t] = tok[0]
        logits, st = rec32.step(tok, st)
        got[t] = logits[0]
        if (t + 1) % stretch == 0:
            smax.append(max(float(s[1].abs().max()) for s in st))
    t_gen = time.perf_counter() - t0
    finite = bool(torch.isfinite(got).all())
    # the same tokens through the float64 distilled model, all at once
    rec64 = hl.RecurrentLM(lm, models, torch.float64)
    seq = torch.cat([prompt[0], toks])[None]
    ref = rec64(seq)[0, prompt.shape[1]:]          # logits after each sampled token
    errs = []
    for s0 in range(0, ntok, stretch):
        a, b = got[s0:s0 + stretch].to(torch.float64), ref[s0:s0 + stretch]
        errs.append(float((a - b).norm() / b.norm()))
    return {"tokens": ntok, "seconds": t_gen, "tok_s": ntok / t_gen, "finite": finite,
            "stretch": stretch, "rel_err_per_stretch": errs, "state_max_per_stretch": smax}


def markdown(out):
    """The figures as the Markdown tables of docs/RESULTS.md and the README."""
    lines = [f"Held-out perplexity of the convolution model: {out['ppl_conv']:.4f} per byte.", "",
             "| fit | fit time | perplexity | / convolution | mean KL (nats) | top-1 agreement | "
             "filter error, median (worst) per layer | sigma_N+1 / ||h||, median per layer | "
             "orders (min/median/max) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for d in out["distilled"]:
        errs = ", ".join(f"{l['err_median']:.1e} ({l['err_max']:.1e})" for l in d["layers"])
        o = d["layers"]
        orders = (f"{o[0]['order_min']}" if d.get("order") else
                  ", ".join(f"{l['order_min']}/{l['order_median']:g}/{l['order_max']}" for l in o))
        sig = ", ".join(f"{l['sigma_rel_median']:.1e}" for l in d["layers"])
        lines.append(f"| {d['fit']} | {d['fit_seconds']:.1f} s | {d['ppl']:.4f} | {d['ppl_ratio']:.5f} | "
                     f"{d['kl']:.2e} | {100 * d['top1']:.2f}% | {errs} | {sig} | {orders} |")
    lines += ["", "| batch | context | distilled, tokens/s | convolution re-run, tokens/s | speed-up | "
              "cached convolution, tokens/s | speed-up | prefill: scan / FFT / conv pass (ms) |",
              "|---|---|---|---|---|---|---|---|"]
    for r in out["throughput"]:
        lines.append(f"| {r['batch']} | {r['context']} | {r['recurrence_tok_s']:.0f} | "
                     f"{r['conv_recompute_tok_s']:.1f} | {r['speedup_vs_recompute']:.1f}x | "
                     f"{r['conv_cached_tok_s']:.0f} | {r['speedup_vs_cached']:.2f}x | "
                     f"{r['prefill_scan_s'] * 1e3:.1f} / {r['prefill_fft_s'] * 1e3:.1f} / "
                     f"{r['conv_pass_s'] * 1e3:.1f} |")
    lines += ["", "| objective | tokens | tokens/s | finite | float32 vs float64 logits, first / last stretch "
              "| largest state, first / last stretch |", "|---|---|---|---|---|---|"]
    for name, lr in out["long_run"].items():
        e, sm = lr["rel_err_per_stretch"], lr["state_max_per_stretch"]
        lines.append(f"| {name} | {lr['tokens']} | {lr['tok_s']:.0f} | {lr['finite']} | {e[0]:.1e} / {e[-1]:.1e} "
                     f"| {sm[0]:.3g} / {sm[-1]:.3g} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?", default=os.path.join(HERE, "..", "examples", "hyena_lm.pt"))
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--quick", action="store_true", help="a short run (fewer orders, timings, tokens)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    orders = (4, 16) if a.quick else (4, 8, 16, 32)
    tols = (3e-2,) if a.quick else (1e-1, 3e-2, 1e-2)
    ntok = 10 ** 4 if a.quick else 10 ** 5

    lm = hl.HyenaLM.load(a.checkpoint)
    info = getattr(lm, "info", {})
    _, held, sha = hl.corpus()
    out = {"checkpoint": os.path.basename(a.checkpoint), "config": lm.config,
           "convrec": convrec.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "machine": platform.processor() or platform.machine(), "corpus_sha256": sha,
           "corpus_matches_training": sha == info.get("corpus_sha256")}
    log(f"# convrec {convrec.__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    log(f"# {a.checkpoint}: {lm.config}")
    if not out["corpus_matches_training"]:
        log("# note: this machine's /usr/share/common-licenses differs from the one the model was trained on")
    L = lm.length
    xs, ys = hl.windows(held, L)
    log(f"# held-out: {held.numel()} bytes, {xs.shape[0]} windows of {L}")
    ref = logits_windows(lm, xs)
    ppl_conv = math.exp(float(F.cross_entropy(ref.reshape(-1, hl.VOCAB).to(torch.float64), ys.reshape(-1))))
    out["ppl_conv"] = ppl_conv
    log(f"\nconvolution model: held-out perplexity {ppl_conv:.4f} (per byte)\n")

    log(f"{'fit':>10} {'fit s':>7} {'ppl':>8} {'ppl/conv':>9} {'KL nats':>9} {'top-1':>7}   "
        f"per layer: median (max) filter error | median sigma_N+1/||h|| | orders min/median/max")
    dist = []
    models16 = None
    fits = [(f"N={n}", {"order": n}) for n in orders] + [(f"tol={t:g}", {"tol": t}) for t in tols]
    fits.append(("N=16 inf", {"order": 16, "horizon": "infinite"}))
    models16inf = None
    for what, kw in fits:
        t = time.perf_counter()
        rec = hl.distill(lm, **kw)
        t_fit = time.perf_counter() - t
        if kw.get("order") == 16:
            if kw.get("horizon") == "infinite":
                models16inf = rec.models
            else:
                models16 = rec.models
        ppl, kl, top1 = agreement(ref, logits_windows(rec, xs), ys)
        layers = layer_records(rec.models)
        dist.append({"fit": what, **kw, "fit_seconds": t_fit, "ppl": ppl, "ppl_ratio": ppl / ppl_conv,
                     "kl": kl, "top1": top1, "layers": layers})
        per = "  ".join(f"{l['err_median']:.1e} ({l['err_max']:.1e}) | {l['sigma_rel_median']:.1e} | "
                        f"{l['order_min']}/{l['order_median']:g}/{l['order_max']}" for l in layers)
        log(f"{what:>10} {t_fit:>7.1f} {ppl:>8.4f} {ppl / ppl_conv:>9.5f} {kl:>9.2e} {top1:>7.4f}   {per}")
    out["distilled"] = dist

    log(f"\ngeneration at N = 16, float32 (tokens per second; prefill of the prompt in ms)")
    log("(recurrence: one step per token; conv rerun: the convolution model over the whole prefix per token;"
        "\n conv cache: cached activations, one dot product per channel and token; prefill of the prompt:"
        "\n the recurrences' scan, FFT with the fitted kernels + closed-form state, one convolution-mode pass)")
    log(f"{'batch':>5} {'context':>7} {'recurrence':>12} {'conv rerun':>12} {'speedup':>9} "
        f"{'conv cache':>10} {'speedup':>8} {'pre scan':>9} {'pre fft':>9} {'conv pass':>9}")
    rec16 = hl.RecurrentLM(lm, models16, torch.float32)
    out["throughput"] = throughput(lm, rec16, held, (512, 2048), (1, 16),
                                   steps=16 if a.quick else 64, reps=1 if a.quick else 3)

    out["long_run"] = {}
    for name, models in (("window", models16), ("infinite", models16inf)):
        log(f"\nlong generation at N = 16 ({name} objective) in float32: {ntok} sampled tokens")
        lr = long_run(lm, models, ntok, ntok // 10, seed=1)
        out["long_run"][name] = lr
        log(f"{lr['tok_s']:.0f} tokens/s, all logits finite: {lr['finite']}")
        log("relative error of the float32 logits against float64, per stretch of "
            f"{lr['stretch']} tokens: " + " ".join(f"{e:.1e}" for e in lr["rel_err_per_stretch"]))
        log("largest |state| per stretch: " + " ".join(f"{s:.3g}" for s in lr["state_max_per_stretch"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
        log(f"\nwrote {a.json}")
    log("\n" + markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
