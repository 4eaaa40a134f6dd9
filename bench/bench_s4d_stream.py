#!/usr/bin/env python3
"""Speed of the S4D sequential-CIFAR network (shared data checkpoint) in
convolution mode and streamed pixel by pixel (convrec.examples.s4d_scifar).

Prints one table: per configuration, the time per pixel and the relative
difference of the logits against convolution mode in the same precision.
"Convolution, per new pixel" is what generation without a recurrence costs:
one full-sequence pass for each new pixel (the time of a pass at L = 1024).
The kernels of convolution mode are evaluated once, outside the timing.
Streaming runs one Python-level step per pixel and layer (Recurrence.step,
then the pointwise layers), so at these sizes its time is mostly the
interpreter's and torch's per-call overhead, not arithmetic.

    build/python-venv/bin/python bench/bench_s4d_stream.py [CHECKPOINT] > docs/results/bench_s4d_stream.txt

Needs the installed package (make check installs it into build/python-venv)
and torch. Short: a few seconds per configuration.
"""
import os
import sys
import time

import torch

import convrec
import convrec.examples.s4d_scifar as ex


def timed(fn, reps):
    fn()  # warm up (plans, caches)
    t = time.perf_counter()
    for _ in range(reps):
        out = fn()
    return (time.perf_counter() - t) / reps, out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "shared", "data",
                                                              "checkpoints", "s4d_scifar.pth")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    net = ex.S4DClassifier.from_checkpoint(path)
    g = torch.Generator().manual_seed(0)
    print(f"# convrec {convrec.__version__}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("# S4D sCIFAR: 4 layers, H = 128, order 64 per channel, L = 1024 pixels")
    print(f"{'batch':>5} {'dtype':>8} {'mode':<34} {'us/pixel':>10} {'rel. diff logits':>17}")
    for B in (1, 16):
        x64 = ex.normalize(torch.rand(B, 3, 32, 32, generator=g, dtype=torch.float64))
        for dtype in (torch.float32, torch.float64):
            x = x64.to(dtype)
            n = net.to(dtype)
            ks = n.kernels(x.shape[1])  # evaluated once, as a deployed model would keep them
            with torch.no_grad():
                t_conv, ref = timed(lambda: n(x, kernels=ks), 3)
            L = x.shape[1]
            rows = [("convolution (FFT), whole sequence", t_conv / L, 0.0),
                    ("convolution, per new pixel", t_conv, 0.0)]
            for backend in ("c", "torch"):
                s = ex.StreamingClassifier(n, backend=backend, dtype=dtype)
                t = time.perf_counter()
                logits = s(x)
                t_stream = (time.perf_counter() - t) / L
                diff = float(torch.linalg.norm(logits - ref) / torch.linalg.norm(ref))
                rows.append((f"streamed, backend {backend!r}", t_stream, diff))
            for name, t, diff in rows:
                print(f"{B:>5} {str(dtype).split('.')[-1]:>8} {name:<34} {t * 1e6:>10.1f} {diff:>17.2e}")


if __name__ == "__main__":
    main()
