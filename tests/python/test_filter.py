"""The recurrence through the CLI: filter and verify, against convolution."""
import json

import numpy as np
import pytest
import scipy.signal

import convrec
from conftest import rel_l2, run


def make_model(tmp):
    rng = np.random.default_rng(4)
    p = np.array([[0.9 * np.exp(0.3j), 0.8 * np.exp(2.0j), 0.5 + 0j],
                  [0.95 * np.exp(1.0j), -0.7 + 0j, np.nan]])
    r = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    m = convrec.Model.from_modes(p, r, d=[0.3, -1.2])
    m.save(tmp / "m.safetensors")
    return m


@pytest.mark.parametrize("shape", [(2, 5000), (3, 2, 700)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_filter_equals_convolution_with_model_kernel(tmp, shape, dtype):
    m = make_model(tmp)
    k = m.kernel(1200)  # |pole| <= 0.95: the tail beyond 1200 is below 1e-26
    u = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    np.save(tmp / "u.npy", u)
    run("filter", tmp / "m.safetensors", tmp / "u.npy", "-o", tmp / "y.npy")
    y = np.load(tmp / "y.npy")
    assert y.dtype == dtype and y.shape == u.shape
    T = shape[-1]
    ref = scipy.signal.fftconvolve(u.astype(np.float64), np.broadcast_to(k, u.shape[:-2] + k.shape), axes=-1)[..., :T]
    assert rel_l2(y, ref) <= (1e-12 if dtype == np.float64 else 1e-5)


def test_filter_refuses_unstable_and_bad_input(tmp):
    m = convrec.Model.from_modes(np.array([[1.01 * np.exp(0.5j)]]), np.array([[1.0 + 0j]]))
    m.save(tmp / "bad.safetensors")
    np.save(tmp / "u.npy", np.ones((1, 10)))
    p = run("filter", tmp / "bad.safetensors", tmp / "u.npy", "-o", tmp / "y.npy", check=False)
    assert p.returncode == 1 and "unstable" in p.stderr.lower() and not (tmp / "y.npy").exists()
    make_model(tmp)
    np.save(tmp / "u3.npy", np.ones((3, 10)))
    p = run("filter", tmp / "m.safetensors", tmp / "u3.npy", "-o", tmp / "y.npy", check=False)
    assert p.returncode == 1 and "channels" in p.stderr


def test_verify_reports_small_error(tmp):
    rng = np.random.default_rng(9)
    L = 512
    h = rng.standard_normal((3, L)) * np.exp(-np.arange(L) / 30.0)
    np.save(tmp / "h.npy", h)
    run("fit", tmp / "h.npy", "-o", tmp / "m.safetensors", "--order", 24, "--horizon", "infinite", "--quiet")
    out = json.loads(run("verify", tmp / "m.safetensors", tmp / "h.npy", "--steps", 20000, "--json").stdout)
    rec = convrec.Model.load(tmp / "m.safetensors").records()
    for c, ch in enumerate(out["channel"]):
        # impulse response error over the run equals the recorded infinite-horizon error
        assert abs(ch["impulse_rel_l2"] - rec["err_infinite"][c]) <= 1e-6 + 1e-3 * rec["err_infinite"][c]
        # random input: the output error is of the order of the kernel error
        assert ch["random_rel_l2"] <= 10 * rec["err_infinite"][c] + 1e-12
