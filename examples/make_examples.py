#!/usr/bin/env python3
"""Generate the bundled example kernels (deterministic; numpy only).

hyena_filters.npy  (16, 2048) float64: Hyena-style implicit long-convolution
    filters: positional features -> small MLP with sine activations ->
    exponential decay window, as in Poli et al. 2023 (Hyena Hierarchy),
    with random (untrained) weights.
cabinet_ir.npy     (2048,) float64: a synthetic loudspeaker-cabinet impulse
    response at 48 kHz: 24 damped resonances between 70 Hz and 6 kHz with
    random gains, and a faint decaying noise floor (-60 dB).
"""
import os
import numpy as np


def hyena_filters(C=16, L=2048, K=4, width=32, w0=1.0, seed=0):
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


def cabinet_ir(L=2048, fs=48000.0, n=24, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(L) / fs
    f = np.geomspace(70.0, 6000.0, n) * rng.uniform(0.95, 1.05, n)
    q = rng.uniform(2.0, 12.0, n)               # quality factors
    g = rng.standard_normal(n) / np.sqrt(f / 70.0)
    h = np.zeros(L)
    for fi, qi, gi in zip(f, q, g):
        h += gi * np.exp(-np.pi * fi / qi * t) * np.sin(2 * np.pi * fi * t + rng.uniform(0, np.pi))
    h /= np.abs(h).max()
    h += 1e-3 * rng.standard_normal(L) * np.exp(-t / 0.01)
    return h


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    np.save(os.path.join(here, "hyena_filters.npy"), hyena_filters())
    np.save(os.path.join(here, "cabinet_ir.npy"), cabinet_ir())
