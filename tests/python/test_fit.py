"""Fits, Hankel singular values and model files, through the CLI and the
package, checked against dense numpy/scipy references."""
import json

import numpy as np
import pytest
import scipy.linalg

import convrec
from conftest import data_file, rel_l2, run


def fir_hsv(h):
    """Singular values of the zero-padded Hankel H[i,j] = h[i+j+1], dense."""
    g = np.concatenate([h[1:], np.zeros(len(h) - 1)])
    H = scipy.linalg.hankel(g[: len(h) - 1], g[len(h) - 2:])
    return np.linalg.svd(H, compute_uv=False)


def modal_kernel(poles, residues, d, L):
    """hhat[0] = d, hhat[k] = sum w Re(r p^(k-1)) with w = 2 for complex poles."""
    k = np.arange(L - 1)
    w = np.where(np.imag(poles) != 0, 2.0, 1.0)
    h = (w[:, None] * np.real(residues[:, None] * poles[:, None] ** k[None, :])).sum(0)
    return np.concatenate([[d], h])


def hinf(h, hhat_fn, n):
    """max |H - Hhat| on an n-point grid, Hhat evaluated in closed form."""
    H = np.fft.rfft(h, n)
    return np.max(np.abs(H - hhat_fn(np.exp(2j * np.pi * np.arange(n // 2 + 1) / n))))


def random_modal(rng, npairs, nreal):
    p = np.concatenate([rng.uniform(0.5, 0.97, npairs) * np.exp(1j * rng.uniform(0.1, 3.0, npairs)),
                        rng.uniform(-0.9, 0.95, nreal) + 0j])
    r = np.concatenate([rng.standard_normal(npairs) + 1j * rng.standard_normal(npairs),
                        rng.standard_normal(nreal) + 0j])
    return p, r


def test_hsv_cli_matches_dense_svd(tmp):
    rng = np.random.default_rng(3)
    h = rng.standard_normal((2, 150)) * np.exp(-np.arange(150) / 30)
    np.save(tmp / "h.npy", h)
    run("hsv", tmp / "h.npy", "-n", 8, "-o", tmp / "s.npy")
    s = np.load(tmp / "s.npy")
    for c in range(2):
        ref = fir_hsv(h[c])[:8]
        assert np.max(np.abs(s[c] - ref)) <= 1e-12 * ref[0]
    out = run("hsv", tmp / "h.npy", "-n", 3).stdout.split("\n")
    assert len(out[0].split()) == 3
    assert abs(float(out[1].split()[0]) - fir_hsv(h[1])[0]) <= 1e-9 * fir_hsv(h[1])[0]


def test_hsv_heat_cont_matches_slicot():
    h = np.load(data_file("mor", "heat-cont_L4096.npy"))
    ref = np.load(data_file("mor", "heat_cont_hsv_slicot.npy"))
    s = convrec.hsv(h, k=8)[0]
    assert np.max(np.abs(s - ref[:8]) / ref[:8]) <= 1e-9


@pytest.mark.parametrize("method", ["auto", "pencil"])
def test_exact_recovery_window(tmp, method):
    rng = np.random.default_rng(11)
    L = 300
    ker = []
    for c in range(3):
        p, r = random_modal(rng, 3, 1)
        ker.append(modal_kernel(p, r, rng.standard_normal(), L))
    ker = np.array(ker)
    np.save(tmp / "k.npy", ker)
    run("fit", tmp / "k.npy", "-o", tmp / "m.safetensors", "--order", 7, "--method", method, "--quiet")
    info = json.loads(run("info", tmp / "m.safetensors", "--json").stdout)
    assert info["stable"]
    for ch in info["channel"]:
        assert ch["order"] == 7
        assert ch["err_window"] <= 1e-9
    run("kernel", tmp / "m.safetensors", "--length", L, "-o", tmp / "kk.npy")
    assert rel_l2(np.load(tmp / "kk.npy"), ker) <= 1e-9


def test_bt_certificate_and_recorded_errors():
    rng = np.random.default_rng(5)
    L = 256
    h = rng.standard_normal((4, L)) * np.exp(-np.arange(L) / 40.0)
    for N in (4, 10):
        m = convrec.fit(h, order=N, horizon="infinite", method="bt")
        rec = m.records()
        P, R, D, K = m.poles, m.residues, m.d, m.kinds
        for c in range(4):
            s = fir_hsv(h[c])
            use = K[c] > 0
            p, r = P[c][use], R[c][use]
            w = np.where(K[c][use] == 2, 2.0, 1.0)

            def hhat(z, p=p, r=r, w=w, d=D[c]):
                t = r[:, None] / (z[None, :] - p[:, None])  # r z^-1 / (1 - p z^-1)
                tc = np.conj(r)[:, None] / (z[None, :] - np.conj(p)[:, None])
                return d + np.where(w[:, None] == 2, t + tc, t).sum(0)

            e = hinf(h[c], hhat, 8 * L)
            assert s[N] * (1 - 1e-9) <= e <= 2 * s[N:].sum() * (1 + 1e-9)
            assert abs(rec["sigma_next"][c] - s[N]) <= 1e-9 * s[0]
            assert abs(rec["err_hinf"][c] - e) <= 1e-6 * e
            assert abs(rec["bt_bound"][c] - 2 * s[N:].sum()) <= 1e-6 * s[N:].sum() + 1e-12 * s[0]
            # the window error recorded equals the one recomputed here
            k = m.kernel(L)[c]
            assert abs(rec["err_window"][c] - rel_l2(k, h[c])) <= 1e-9
        assert np.all(m.spectral_radius() < 1)


@pytest.mark.parametrize("horizon", ["window", "infinite"])
def test_tol_selection(horizon):
    # noise under three decay rates: the orders found (13, 34, 56 with this seed) differ,
    # and the slowest kernel is still at exp(-5) of its peak at L, so the two
    # horizons select different orders for it (low orders keep the tol search
    # cheap: at L = 400 it found orders up to 240 and took ~1 min)
    rng = np.random.default_rng(8)
    L = 120
    h = rng.standard_normal((3, L)) * np.exp(-np.arange(L) / np.array([[6.0], [12.0], [24.0]]))
    tol = 1e-2
    m = convrec.fit(h, tol=tol, horizon=horizon)
    rec = m.records()
    err = rec["err_window"] if horizon == "window" else rec["err_infinite"]
    assert np.all(err <= tol)
    assert np.all(m.orders() >= 1)
    # the smallest such order: one fewer with the same method misses the tolerance
    for c in range(3):
        n = int(m.orders()[c])
        if n > 1:
            r = convrec.fit(h[c], order=n - 1, horizon=horizon).records()
            e = r["err_window"] if horizon == "window" else r["err_infinite"]
            assert e[0] > tol


def test_s4d_kernels_recovered():
    h = np.load(data_file("s4d_scifar", "kernels.npy"))[::64]
    m = convrec.fit(h, order=64)
    assert np.max(m.records()["err_window"]) <= 1e-6
    assert np.all(m.spectral_radius() < 1)


def test_bad_inputs(tmp):
    np.save(tmp / "k.npy", np.random.default_rng(0).standard_normal((2, 50)))
    p = run("fit", tmp / "k.npy", "-o", tmp / "m.safetensors", "--order", 50, check=False)
    assert p.returncode != 0 and not (tmp / "m.safetensors").exists()
    for bad in (["--order", "-3"], ["--order", "abc"], ["--tol", "0"], ["--tol", "nan"],
                ["--order", "4", "--tol", "0.1"], ["--method", "magic"], ["--horizon", "forever"]):
        p = run("fit", tmp / "k.npy", "-o", tmp / "m.safetensors", *bad, check=False)
        assert p.returncode == 2, bad
        assert not (tmp / "m.safetensors").exists()
    k = np.ones((2, 50))
    k[0, 7] = np.inf
    np.save(tmp / "inf.npy", k)
    p = run("fit", tmp / "inf.npy", "-o", tmp / "m.safetensors", "--order", 4, check=False)
    assert p.returncode == 1 and "Inf" in p.stderr
    # all-zero kernels and L = 1: models with d only
    np.save(tmp / "z.npy", np.zeros((2, 64)))
    run("fit", tmp / "z.npy", "-o", tmp / "z.safetensors", "--order", 4, "--quiet")
    info = json.loads(run("info", tmp / "z.safetensors", "--json").stdout)
    assert all(ch["order"] == 0 for ch in info["channel"])
    np.save(tmp / "one.npy", np.array([[2.5], [-1.0]]))
    run("fit", tmp / "one.npy", "-o", tmp / "one.safetensors", "--tol", "1e-3", "--quiet")
    run("kernel", tmp / "one.safetensors", "--length", 3, "-o", tmp / "k1.npy")
    assert np.array_equal(np.load(tmp / "k1.npy"), [[2.5, 0, 0], [-1.0, 0, 0]])
    (tmp / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    p = run("info", tmp / "junk.safetensors", check=False)
    assert p.returncode == 1 and "junk.safetensors" in p.stderr


def test_model_file_is_plain_safetensors(tmp):
    """Read the file with numpy only, as docs/FORMAT.md describes, and
    rebuild the kernel from poles and residues independently."""
    rng = np.random.default_rng(2)
    L = 200
    h = rng.standard_normal((2, L)) * np.exp(-np.arange(L) / 25.0)
    convrec.fit(h, order=6).save(tmp / "m.safetensors")
    raw = (tmp / "m.safetensors").read_bytes()
    n = int.from_bytes(raw[:8], "little")
    hdr = json.loads(raw[8:8 + n])
    base = 8 + n

    def tensor(name):
        t = hdr[name]
        a, b = t["data_offsets"]
        dt = {"F64": "<f8", "U8": "u1", "I64": "<i8"}[t["dtype"]]
        return np.frombuffer(raw[base + a: base + b], dtype=dt).reshape(t["shape"])

    poles, res, kinds, d = tensor("poles"), tensor("residues"), tensor("kinds"), tensor("d")
    kk = convrec.Model.load(tmp / "m.safetensors").kernel(L)
    for c in range(2):
        use = kinds[c] > 0
        p = poles[c, use, 0] + 1j * poles[c, use, 1]
        r = res[c, use, 0] + 1j * res[c, use, 1]
        assert rel_l2(modal_kernel(p, r, d[c], L), kk[c]) <= 1e-12
    assert hdr["__metadata__"]["format"] == "convrec-modal"


def test_fits_run_with_a_single_threaded_blas_and_restore_it(monkeypatch):
    """libconvrec needs LAPACK single-threaded inside its OpenMP threads
    (convrec.h, "BLAS"): convrec.fit sets a pthreads OpenBLAS to 1 thread for
    the call, also when fits overlap in Python threads, and restores the
    caller's count afterwards."""
    import threading
    if convrec._blas_set is None:
        pytest.skip("libconvrec's BLAS is not OpenBLAS")
    before = convrec._blas_get()
    seen, orig = [], convrec._lib.cr_fit

    def spy(*a):
        seen.append(convrec._blas_get())
        return orig(*a)

    monkeypatch.setattr(convrec._lib, "cr_fit", spy)
    h = 0.9 ** np.arange(256) * np.cos(0.3 * np.arange(256))
    try:
        convrec._blas_set(2)
        caller = convrec._blas_get()
        m = convrec.fit(h, order=4, threads=2)
        assert convrec._blas_get() == caller
        ts = [threading.Thread(target=convrec.fit, args=(h,), kwargs=dict(order=6)) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert convrec._blas_get() == caller
    finally:
        convrec._blas_set(before)
    assert seen == [1] * 5
    assert m.records()["err_window"][0] < 1e-6
