#!/usr/bin/env python3
"""Compression study of the S4D sequential-CIFAR network (shared data
checkpoint): every layer's order-64 models reduced to N states per channel,
N in {4, 8, 16, 32}; logit errors and top-class agreement against the
original network on the Debian-packaged photos (convrec.examples.s4d_compress
.natural_images: 32x32 crops) and on random images; per-layer kernel errors
next to sigma_{N+1}; the fit time of every channel.

    build/python-venv/bin/python bench/study_s4d_compress.py [--orders 4,8,16,32]
        [--layers 0,1,2,3] [--channels all] [--random 64] [--processes 2] [--per-layer]
        [--json docs/results/s4d_compress.json] [CHECKPOINT] > docs/results/s4d_compress.txt

Long: the fits at N = 32 take minutes per layer on 2 cores (see the table's
times). Progress goes to stderr. Needs the installed package and torch, and
PIL with python3-matplotlib / python3-scipy / python3-skimage for the photos.
"""
import argparse
import json
import os
import sys
import time

import torch

import convrec
import convrec.examples.s4d_compress as sc
import convrec.examples.s4d_scifar as ex


def ints(s):
    return None if s == "all" else [int(v) for v in s.split(",")]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?",
                    default=os.path.join(here, "..", "..", "shared", "data", "checkpoints", "s4d_scifar.pth"))
    ap.add_argument("--orders", default="4,8,16,32")
    ap.add_argument("--layers", default="all")
    ap.add_argument("--channels", default="all")
    ap.add_argument("--random", type=int, default=64, help="number of random images")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--per-layer", action="store_true", help="also reduce one layer at a time")
    ap.add_argument("--json", help="write the full result here")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    net = ex.S4DClassifier.from_checkpoint(a.checkpoint)
    photos, where = sc.natural_images()
    sets = {"natural": photos, "random": sc.random_images(a.random, seed=0)}
    t = time.perf_counter()
    res = sc.study(net, sets, orders=ints(a.orders), layers=ints(a.layers), channels=ints(a.channels),
                   processes=a.processes, per_layer=a.per_layer,
                   log=lambda s: print(f"[{time.perf_counter() - t:7.1f} s] {s}", file=sys.stderr, flush=True))
    wall = time.perf_counter() - t
    print(f"# convrec {convrec.__version__}, torch {torch.__version__}; {a.processes} fit processes "
          f"(1 thread each); whole study {wall:.0f} s")
    print(f"# command: bench/study_s4d_compress.py " + " ".join(sys.argv[1:]))
    sys.stdout.write(sc.report(res, where))
    if a.json:
        res["photos"] = where
        res["wall"] = wall
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
