"""The reference convolution, through the CLI and the package, against scipy."""
import numpy as np
import pytest
import scipy.signal

import convrec
from conftest import rel_l2, run


def direct(h, u):
    T = u.shape[-1]
    return scipy.signal.fftconvolve(u, np.broadcast_to(h, u.shape[:-1] + h.shape[-1:]), axes=-1)[..., :T]


@pytest.mark.parametrize("C,L,T,B", [(1, 1, 1, None), (3, 7, 100, None), (4, 100, 7, None),
                                     (2, 64, 64, 3), (5, 1000, 4097, None)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cli_conv_matches_scipy(tmp, C, L, T, B, dtype):
    rng = np.random.default_rng(C * 1000 + L + T)
    h = rng.standard_normal((C, L))
    u = rng.standard_normal((C, T) if B is None else (B, C, T)).astype(dtype)
    np.save(tmp / "h.npy", h)
    np.save(tmp / "u.npy", u)
    run("conv", tmp / "h.npy", tmp / "u.npy", "-o", tmp / "y.npy")
    y = np.load(tmp / "y.npy")
    assert y.dtype == dtype and y.shape == u.shape
    ref = direct(h, u.astype(np.float64))
    assert rel_l2(y, ref) <= (1e-12 if dtype == np.float64 else 1e-5)


def test_package_conv():
    rng = np.random.default_rng(5)
    h = rng.standard_normal((3, 50))
    u = rng.standard_normal((2, 3, 300))
    assert rel_l2(convrec.conv(h, u), direct(h, u)) <= 1e-12
    u1 = rng.standard_normal(40)
    assert rel_l2(convrec.conv(h[0], u1), direct(h[0], u1)) <= 1e-12


def test_cli_conv_errors(tmp):
    h = np.ones((2, 5))
    np.save(tmp / "h.npy", h)
    np.save(tmp / "u3.npy", np.ones((3, 10)))
    p = run("conv", tmp / "h.npy", tmp / "u3.npy", "-o", tmp / "y.npy", check=False)
    assert p.returncode == 1 and "channels" in p.stderr
    assert not (tmp / "y.npy").exists()
    bad = np.ones((2, 10))
    bad[1, 3] = np.nan
    np.save(tmp / "nan.npy", bad)
    p = run("conv", tmp / "h.npy", tmp / "nan.npy", "-o", tmp / "y.npy", check=False)
    assert p.returncode == 1 and "NaN" in p.stderr and "nan.npy" in p.stderr
    assert not (tmp / "y.npy").exists()
    (tmp / "junk.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    p = run("conv", tmp / "junk.npy", tmp / "u3.npy", "-o", tmp / "y.npy", check=False)
    assert p.returncode == 1 and "junk.npy" in p.stderr
    p = run("conv", tmp / "h.npy", check=False)
    assert p.returncode == 2
    p = run("frobnicate", check=False)
    assert p.returncode == 2
    np.save(tmp / "i.npy", np.ones((2, 10), dtype=np.int64))
    p = run("conv", tmp / "h.npy", tmp / "i.npy", "-o", tmp / "y.npy", check=False)
    assert p.returncode == 1 and "dtype" in p.stderr
