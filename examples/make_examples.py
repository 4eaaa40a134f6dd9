#!/usr/bin/env python3
"""Generate the bundled example kernels (deterministic; numpy only).

hyena_filters.npy  (16, 2048) float64: Hyena-style implicit long-convolution
    filters: positional features -> small MLP with sine activations ->
    exponential decay window, as in Poli et al. 2023 (Hyena Hierarchy),
    with random (untrained) weights.
room_ir.npy        (4096,) float64: a synthetic room-like impulse response:
    direct path, a few early reflections and exponentially decaying noise.
"""
import os
import numpy as np


def hyena_filters(C=16, L=2048, K=8, width=32, w0=10.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, L)[:, None]
    f = np.arange(1, K + 1)[None, :]
    z = np.concatenate([t, np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], axis=1)
    W1 = rng.standard_normal((z.shape[1], width)) / np.sqrt(z.shape[1])
    W2 = rng.standard_normal((width, width)) / np.sqrt(width)
    W3 = rng.standard_normal((width, C)) / np.sqrt(width)
    a = np.sin(w0 * z @ W1)
    a = np.sin(w0 * a @ W2)
    h = (a @ W3).T
    decay = np.exp(-np.linspace(1.0, 8.0, C)[:, None] * np.arange(L)[None, :] / L * 4.0)
    return h * decay


def room_ir(L=4096, seed=1):
    rng = np.random.default_rng(seed)
    h = np.zeros(L)
    h[20] = 1.0
    for k, g in [(60, 0.5), (95, -0.35), (130, 0.3), (171, -0.2)]:
        h[k] += g
    n = np.arange(L)
    tail = rng.standard_normal(L) * 0.2 * np.exp(-n / 500.0)
    tail[:40] = 0.0
    return h + tail


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    np.save(os.path.join(here, "hyena_filters.npy"), hyena_filters())
    np.save(os.path.join(here, "room_ir.npy"), room_ir())
