"""The Python Stream against convolution with the model's kernel (scipy)."""
import numpy as np
import pytest
import scipy.signal

import convrec
from conftest import rel_l2


def model():
    p = np.array([[0.97 * np.exp(0.2j), 0.6 + 0j], [0.9 * np.exp(2.5j), np.nan]])
    r = np.array([[1 - 2j, 0.5 + 0j], [0.3 + 1j, np.nan]])
    return convrec.Model.from_modes(p, r, d=[0.1, 0.2])


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_step_block_filter_match_convolution(dtype, tol):
    m = model()
    k = m.kernel(3000)
    u = np.random.default_rng(0).standard_normal((3, 2, 800))
    ref = scipy.signal.fftconvolve(u, np.broadcast_to(k, (3,) + k.shape), axes=-1)[..., :800]
    s = m.stream(batch=3, dtype=dtype)
    ys = np.stack([s.step(u[:, :, t]) for t in range(800)], axis=-1)
    assert rel_l2(ys, ref) <= tol
    s.reset()
    yb = s.block(u)
    assert np.array_equal(yb, ys)  # block is bit-identical to steps
    assert rel_l2(m.filter(u.astype(dtype)), ref) <= tol


def test_state_roundtrip_and_prefill():
    m = model()
    u = np.random.default_rng(1).standard_normal((1, 2, 500))
    a = m.stream()
    a.block(u[:, :, :300])
    saved = a.state
    tail = a.block(u[:, :, 300:])
    b = m.stream()
    b.state = saved
    assert np.array_equal(b.block(u[:, :, 300:]), tail)
    c = m.stream()
    c.prefill(u[:, :, :300], method="fft")
    assert rel_l2(c.state, saved) <= 1e-12


def test_unstable_refused():
    m = convrec.Model.from_modes(np.array([[1.2 + 0j]]), np.array([[1.0 + 0j]]))
    with pytest.raises(convrec.ConvrecError, match="unstable"):
        m.stream()
    m.stream(allow_unstable=True)
