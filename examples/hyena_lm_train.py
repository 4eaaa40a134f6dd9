#!/usr/bin/env python3
"""Train the small Hyena-style byte-level language model of
convrec.examples.hyena_lm on /usr/share/common-licenses (on every Debian
machine; the last 10% of each file is held out) and write the checkpoint
that examples/hyena_lm.pt is:

    build/python-venv/bin/python examples/hyena_lm_train.py [-o examples/hyena_lm.pt] [--steps 400]

CPU only, 2 threads, a few minutes. The checkpoint records the corpus'
sha256, the settings and the held-out loss every 100 steps. Training uses
torch's threads, so runs are repeatable only up to the order of floating-point
sums; the figures of bench/lm_distill.py are measured on the committed file.
"""
import argparse
import math
import os
import sys

import torch

import convrec.examples.hyena_lm as hl


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("-o", "--output", default=os.path.join(here, "hyena_lm.pt"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lm, info = hl.train(steps=a.steps, batch=a.batch, length=a.length, lr=a.lr, seed=a.seed,
                        log=lambda s: print(s, flush=True))
    h = info["history"][-1]["heldout_nll"]
    lm.save(a.output, **info)
    print(f"wrote {a.output}: held-out nll {h:.4f} nats/byte (perplexity {math.exp(h):.3f}), "
          f"{info['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
