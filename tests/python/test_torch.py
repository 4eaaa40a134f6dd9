"""convrec.torch: exact S4D import, the recurrent module (both backends)
against libconvrec's executor, tensors in and out, reduction, bad input."""
import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import convrec  # noqa: E402
import convrec.torch as crt  # noqa: E402
from conftest import data_file, rel_l2  # noqa: E402

LAYER = "s4_layers.{}."


@pytest.fixture(scope="module")
def s4d_state():
    path = data_file("checkpoints", "s4d_scifar.pth")
    return torch.load(path, map_location="cpu")["model"]


def tiny_s4d(H=3, N=4, seed=0, dtype=torch.float32):
    """A random S4D layer's state dict (as the standalone S4D stores it)."""
    g = torch.Generator().manual_seed(seed)
    sd = {
        "kernel.log_dt": torch.rand(H, generator=g) * 3 - 5,
        "kernel.log_A_real": torch.rand(H, N, generator=g) - 1.5,
        "kernel.A_imag": torch.rand(H, N, generator=g) * 20,
        "kernel.C": torch.randn(H, N, 2, generator=g),
        "D": torch.randn(H, generator=g),
    }
    sd["kernel.A_imag"][:, 0] = 0.0  # as S4D-Lin initialises mode 0: a real pole
    return {k: v.to(dtype) for k, v in sd.items()}


def direct_s4d_impulse(sd, L):
    """The layer's impulse response by brute force in float64: K[k] + D delta,
    K[k] = 2 Re sum_n C_n (exp(dt A_n) - 1) / A_n exp(dt A_n k), loop over k."""
    dt = np.exp(sd["kernel.log_dt"].double().numpy())
    A = -np.exp(sd["kernel.log_A_real"].double().numpy()) + 1j * sd["kernel.A_imag"].double().numpy()
    C = sd["kernel.C"].double().numpy()
    C = C[..., 0] + 1j * C[..., 1]
    lam = np.exp(dt[:, None] * A)
    coef = C * (lam - 1) / A
    h = np.stack([2 * np.real((coef * lam ** k).sum(-1)) for k in range(L)], axis=1)
    h[:, 0] += sd["D"].double().numpy()
    return h


# ---------------------------------------------------------------------------
# S4D import

@pytest.mark.parametrize("layer", range(4))
def test_from_s4d_is_exact_on_the_checkpoint(s4d_state, layer):
    prefix = LAYER.format(layer)
    m = crt.from_s4d(s4d_state, prefix=prefix, length=1024)
    assert m.channels == 128 and list(m.orders()) == [64] * 128
    D = s4d_state[prefix + "D"].double().numpy()
    k = m.kernel(1024)
    # against the layer's formula, computed in torch float64
    layer_k = crt.s4d_kernel(s4d_state, 1024, prefix=prefix).numpy()
    ref = layer_k.copy()
    ref[:, 0] += D
    assert np.max(np.abs(k - ref)) <= 1e-12 * np.max(np.abs(ref))
    # against the shared data (evaluated independently, without torch)
    rows = slice(128 * layer, 128 * (layer + 1))
    kern = np.load(data_file("s4d_scifar", "kernels.npy"))[rows]
    np.testing.assert_allclose(layer_k, kern, rtol=0, atol=1e-12 * np.abs(kern).max())
    modes = np.load(data_file("s4d_scifar", "modes.npz"))
    P, R = modes["poles"][rows], modes["residues"][rows]
    flip = P.imag < 0  # the model keeps the pair's representative with Im >= 0
    P, R = np.where(flip, P.conj(), P), np.where(flip, R.conj(), R)
    np.testing.assert_allclose(m.poles, P, rtol=0, atol=1e-14)
    np.testing.assert_allclose(m.residues, R * P, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(m.d, modes["D"][rows] + 2 * R.real.sum(1), rtol=1e-13, atol=1e-15)
    rec = m.records()
    assert np.all(rec["length"] == 1024) and np.all(rec["order"] == 64)
    assert np.max(rec["err_window"]) <= 1e-12


def test_from_s4d_convention_on_a_brute_force_layer():
    """d = D + K[0], residues = C' lambda, a mode with A_imag == 0 is a real mode."""
    sd = tiny_s4d()
    m = crt.from_s4d(sd)
    assert list(m.orders()) == [7, 7, 7]  # 3 pairs + 1 real mode per channel
    assert np.all((m.kinds == 1).sum(1) == 1)
    h = direct_s4d_impulse(sd, 300)
    assert rel_l2(m.kernel(300), h) <= 1e-13
    # the model's impulse response is the layer's output for a unit impulse
    u = np.zeros((3, 300))
    u[:, 0] = 1
    assert rel_l2(m.filter(u), h) <= 1e-13
    # prefix, float64 parameters and a complex C are accepted as well
    sd2 = {"enc.layer." + k: v.double() for k, v in sd.items()}
    sd2["enc.layer.kernel.C"] = torch.view_as_complex(sd2["enc.layer.kernel.C"])
    np.testing.assert_allclose(crt.from_s4d(sd2, prefix="enc.layer.").kernel(300), m.kernel(300), rtol=0, atol=1e-14)


def test_from_s4d_refuses_bad_state_dicts():
    good = tiny_s4d()
    with pytest.raises(KeyError, match=r"missing layer\.kernel\.log_dt, layer\.kernel\.log_A_real"):
        crt.from_s4d(good, prefix="layer.")
    sd = dict(good)
    del sd["D"], sd["kernel.C"]
    with pytest.raises(KeyError, match=r"missing kernel\.C, D \(keys under ''"):
        crt.from_s4d(sd)
    sd = dict(good, **{"kernel.C": good["kernel.C"][..., 0]})
    with pytest.raises(ValueError, match=r"kernel\.C has shape \(3, 4\); expected \(3, 4, 2\)"):
        crt.from_s4d(sd)
    sd = dict(good, **{"kernel.A_imag": good["kernel.A_imag"][:2]})
    with pytest.raises(ValueError, match=r"kernel\.A_imag has shape \(2, 4\); expected \(3, 4\)"):
        crt.from_s4d(sd)
    sd = dict(good, **{"D": good["D"][None]})
    with pytest.raises(ValueError, match=r"D has shape \(1, 3\); expected \(3,\)"):
        crt.from_s4d(sd)
    bad = good["kernel.log_dt"].clone()
    bad[1] = float("nan")
    with pytest.raises(ValueError, match=r"kernel\.log_dt contains NaN or Inf"):
        crt.from_s4d(dict(good, **{"kernel.log_dt": bad}))
    with pytest.raises(TypeError, match=r"kernel\.A_imag has dtype torch\.int64"):
        crt.from_s4d(dict(good, **{"kernel.A_imag": good["kernel.A_imag"].long()}))
    with pytest.raises(TypeError, match="state dict"):
        crt.from_s4d([1, 2, 3])
    # exp(log_A_real) underflows: |exp(dt A)| = 1, on the unit circle
    lar = good["kernel.log_A_real"].double().clone()
    lar[2, 1] = -800.0
    with pytest.raises(ValueError, match="channel 2 mode 1.*unit disk"):
        crt.from_s4d(dict(good, **{"kernel.log_A_real": lar}))
    # ... and with A_imag = 0 the discretisation itself is undefined (A = 0)
    lar[2, 1], lar[0, 0] = 0.0, -800.0
    with pytest.raises(ValueError, match="channel 0 mode 0.*non-finite"):
        crt.from_s4d(dict(good, **{"kernel.log_A_real": lar}))


# ---------------------------------------------------------------------------
# The recurrent module against the C executor

def mixed_model():
    """Pairs, real modes, a pole at 0.999 and unused slots."""
    p = np.array([[0.999 * np.exp(0.01j), 0.6 + 0j, -0.5 + 0j],
                  [0.9 * np.exp(2.5j), 0.95 * np.exp(0.3j), np.nan],
                  [0.3 + 0j, np.nan, np.nan]])
    r = np.array([[0.01 - 0.02j, 0.5 + 0j, 1 + 0j],
                  [0.3 + 1j, -0.2 + 0.1j, np.nan],
                  [2.0 + 0j, np.nan, np.nan]])
    return convrec.Model.from_modes(p, r, d=[0.1, -0.2, 0.0])


TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
NP = {torch.float32: np.float32, torch.float64: np.float64}


@pytest.fixture(scope="module")
def s4d_model(s4d_state):
    return crt.from_s4d(s4d_state, prefix=LAYER.format(0), length=1024)


@pytest.mark.parametrize("backend", ["torch", "c"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("which", ["mixed", "s4d"])
def test_recurrence_matches_the_c_executor(request, which, dtype, backend):
    m = mixed_model() if which == "mixed" else request.getfixturevalue("s4d_model")
    C = m.channels
    u = np.random.default_rng(5).standard_normal((3, C, 1500))
    ref64 = m.filter(u)                                   # C executor, double
    ref = m.stream(3, NP[dtype]).block(u.astype(NP[dtype]))  # C executor, same precision
    rec = crt.Recurrence(m, dtype=dtype, backend=backend)
    ut = torch.from_numpy(u).to(dtype)
    y, state = rec(ut, return_state=True)
    assert y.dtype == dtype and y.shape == ut.shape
    y = y.double().numpy()
    assert rel_l2(y, ref) <= TOL[dtype]
    assert rel_l2(y, ref64) <= TOL[dtype]
    # token by token, then continued from the returned state
    T1 = 300
    st, ys = None, []
    for t in range(T1):
        yt, st = rec.step(ut[:, :, t], st)
        ys.append(yt)
    ys = torch.stack(ys, -1).double().numpy()
    assert rel_l2(ys, ref[..., :T1]) <= TOL[dtype]
    y2 = rec(ut[:, :, T1:], state=st).double().numpy()
    assert rel_l2(y2, ref[..., T1:]) <= TOL[dtype]
    # the final state is the C stream's, in the same layout. A state sums
    # ~1/(1 - |pole|) inputs, so its float32 rounding is larger than the output's.
    s = m.stream(3)
    s.block(u)
    cstate = s.state[..., 0] + 1j * s.state[..., 1]
    assert rel_l2(state.numpy(), cstate) <= (1e-5 if dtype == torch.float32 else 1e-12)


def test_states_are_shared_between_backends_and_forkable(s4d_model):
    m = s4d_model
    u = torch.randn(2, m.channels, 400, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rt = crt.Recurrence(m, dtype=torch.float64, backend="torch")
    rc = crt.Recurrence(m, dtype=torch.float64, backend="c")
    full = rc(u)
    _, st = rt(u[:, :, :250], return_state=True)
    fork = st.clone()
    a = rc(u[:, :, 250:], state=st)                       # torch state into the C stream
    assert rel_l2(a.numpy(), full[:, :, 250:].numpy()) <= 1e-12
    # fork: two different continuations from one state, each as from scratch
    v = torch.randn(2, m.channels, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    _, sc = rc(u[:, :, :250], return_state=True)
    y1, _ = rc.step(v, sc)                   # the C stream goes on
    y2, _ = rc.step(-v, fork)                # another state object: loaded with set_state
    y3, _ = rt.step(-v, fork)
    for y, sign in ((y1, 1), (y2, -1), (y3, -1)):
        seq = torch.cat([u[:, :, :250], sign * v[:, :, None]], -1).numpy()
        assert rel_l2(y.numpy(), m.filter(seq)[:, :, -1]) <= 1e-12
    assert torch.equal(fork, st)             # stepping never changes the caller's state
    # a state returned by step stays valid after other calls moved the C stream
    y4, s4 = rc.step(v, sc)
    rc(u)                                    # from zero state, no state returned
    y5, _ = rc.step(v, s4)
    y6, _ = rt.step(v, s4)
    assert rel_l2(y5.numpy(), y6.numpy()) <= 1e-12
    fork2 = copy.deepcopy(rc)
    assert torch.equal(fork2(u), rc(u))


def test_recurrence_is_differentiable_in_u():
    m = mixed_model()
    rec = crt.Recurrence(m, dtype=torch.float64)
    u = torch.randn(1, 3, 40, dtype=torch.float64, requires_grad=True)
    rec(u).sum().backward()
    # d(sum y)/d u_t = sum of the kernel over the remaining samples
    k = m.kernel(40)
    expect = np.stack([k[:, :40 - t].sum(1) for t in range(40)], axis=1)
    assert rel_l2(u.grad[0].numpy(), expect) <= 1e-12


def test_recurrence_precision_and_devices():
    m = mixed_model()
    rec = crt.Recurrence(m, dtype=torch.float32)
    u = torch.randn(2, 3, 100, dtype=torch.float64)
    rec.double()
    assert rec.dtype == torch.float64 and rec.pole_hi.dtype == torch.complex128
    assert rel_l2(rec(u).numpy(), m.filter(u.numpy())) <= 1e-12
    with pytest.raises(TypeError, match="float32 or float64"):
        rec.half()
    rc = crt.Recurrence(m, backend="c")
    with pytest.raises(RuntimeError, match="CPU only"):
        rc.to("meta")
    with pytest.raises(RuntimeError, match="input on meta"):
        rec(u.to("meta"))
    net = torch.nn.Sequential(crt.Recurrence(m, dtype=torch.float64))
    net.to(torch.float32)
    assert net[0].dtype == torch.float32
    assert pickle.loads(pickle.dumps(net))[0](u.float()).shape == u.shape
    assert "order=1..4" in repr(net)


def test_recurrence_refuses_bad_input():
    m = mixed_model()
    for backend in ("torch", "c"):
        rec = crt.Recurrence(m, dtype=torch.float32, backend=backend)
        with pytest.raises(ValueError, match=r"shape \(2, 4, 10\); expected \(B, C, T\) with C = 3"):
            rec(torch.zeros(2, 4, 10))
        with pytest.raises(ValueError, match=r"expected \(B, C\)"):
            rec.step(torch.zeros(2, 3, 1))
        with pytest.raises(TypeError, match="input dtype torch.float64"):
            rec(torch.zeros(2, 3, 10, dtype=torch.float64))
        with pytest.raises(TypeError, match="torch tensor"):
            rec(np.zeros((2, 3, 10), dtype=np.float32))
        with pytest.raises(ValueError, match=r"state \(1, 3, 3\)"):
            rec.step(torch.zeros(2, 3), rec.initial_state(1))
        bad = torch.zeros(2, 3, 10)
        bad[1, 2, 7] = float("nan")
        with pytest.raises((ValueError, convrec.ConvrecError), match="NaN"):
            rec(bad)
    rc = crt.Recurrence(m, backend="c")
    with pytest.raises(RuntimeError, match="gradients"):
        rc(torch.zeros(1, 3, 5, requires_grad=True))
    unstable = convrec.Model.from_modes(np.array([[1.0001 + 0j]]), np.array([[1.0 + 0j]]))
    for backend in ("torch", "c"):
        with pytest.raises(convrec.ConvrecError, match="unstable"):
            crt.Recurrence(unstable, backend=backend)
        crt.Recurrence(unstable, backend=backend, allow_unstable=True)
    with pytest.raises(ValueError, match="backend"):
        crt.Recurrence(m, backend="cuda")
    with pytest.raises(TypeError, match="dtype"):
        crt.Recurrence(m, dtype=torch.float16)


# ---------------------------------------------------------------------------
# Tensors through the core package; kernel-producing modules; reduction

class ImplicitFilter(torch.nn.Module):
    """A Hyena-style implicit filter: positional features -> MLP with sine
    activations -> (C, L) kernel, windowed by a decay per channel."""

    def __init__(self, C=4, L=512, width=16, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.L = L
        self.lin1 = torch.nn.Linear(3, width)
        self.lin2 = torch.nn.Linear(width, C)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.decay = torch.nn.Parameter(torch.linspace(0.3, 3.0, C))

    def forward(self):
        t = torch.linspace(0, 1, self.L)[:, None]
        z = torch.cat([t, torch.sin(2 * np.pi * t), torch.cos(2 * np.pi * t)], -1)
        k = self.lin2(torch.sin(4 * self.lin1(z))).T  # (C, L)
        return k * torch.exp(-self.decay[:, None] * 10 * t.T)


def test_kernel_module_output_fits_in_one_call():
    k = ImplicitFilter()()
    assert k.requires_grad and k.dtype == torch.float32
    m = convrec.fit(k, order=12)
    same = convrec.fit(k.detach().numpy().astype(np.float64), order=12)
    np.testing.assert_array_equal(m.poles, same.poles)
    assert np.all(m.records()["err_window"] < 0.5)
    assert isinstance(convrec.hsv(k, k=4), np.ndarray)
    with pytest.raises(TypeError, match="torch.float16"):
        convrec.fit(k.half(), order=4)
    with pytest.raises(TypeError, match="torch.int64"):
        convrec.fit(torch.ones(2, 64, dtype=torch.long), order=4)
    with pytest.raises(ValueError, match=r"\(L,\) or \(C, L\)"):
        convrec.fit(k[None], order=4)
    bad = k.detach().clone()
    bad[0, 3] = float("inf")
    with pytest.raises(convrec.ConvrecError, match="NaN or Inf"):
        convrec.fit(bad, order=4)


def test_tensors_in_tensors_out():
    m = mixed_model()
    u = torch.randn(2, 3, 64)
    y = m.filter(u)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    assert rel_l2(y.numpy(), m.filter(u.numpy())) == 0
    yc = convrec.conv(torch.from_numpy(m.kernel(64)), u.double())
    assert isinstance(yc, torch.Tensor) and rel_l2(yc.numpy(), y.double().numpy()) <= 1e-6
    s = m.stream(2)
    assert isinstance(s.step(u[:, :, 0].double()), torch.Tensor)
    md = crt.modes(m)
    np.testing.assert_array_equal(md.poles.numpy(), m.poles)
    np.testing.assert_array_equal(md.residues.numpy(), m.residues)
    np.testing.assert_array_equal(md.d.numpy(), m.d)
    np.testing.assert_array_equal(md.kinds.numpy(), m.kinds)
    assert crt.modes(m, torch.float32).poles.dtype == torch.complex64
    np.testing.assert_array_equal(crt.kernel(m, 50).numpy(), m.kernel(50))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_gpu_tensors():
    m = mixed_model()
    u = torch.randn(2, 3, 64, device="cuda")
    with pytest.warns(RuntimeWarning, match="copying a tensor from cuda"):
        y = m.filter(u)
    assert y.device == u.device
    rec = crt.Recurrence(m, dtype=torch.float32).cuda()
    assert rel_l2(rec(u).cpu().double().numpy(), m.filter(u.cpu().double().numpy())) <= 1e-6


def test_reduce(s4d_state):
    # 16 channels of layer 0 (a fit of all 128 takes seconds)
    prefix = LAYER.format(0)
    sub = {k: v[:16] for k, v in s4d_state.items() if k.startswith(prefix)}
    m = crt.from_s4d(sub, prefix=prefix, length=1024)
    small = m.reduce(order=16)
    assert list(small.orders()) == [16] * 16
    fresh = convrec.fit(m.kernel(1024), order=16)
    rs, rf = small.records(), fresh.records()
    assert np.all(rs["length"] == 1024)
    np.testing.assert_allclose(rs["err_window"], rf["err_window"], rtol=1e-9)
    np.testing.assert_allclose(rs["sigma_next"], rf["sigma_next"], rtol=1e-9)
    assert np.all(np.isfinite(rs["sigma_next"])) and np.all(rs["sigma_next"] > 0)
    # the records are the truth about the reduced model
    k = m.kernel(1024)
    err = np.linalg.norm(small.kernel(1024) - k, axis=1) / np.linalg.norm(k, axis=1)
    np.testing.assert_allclose(rs["err_window"], err, rtol=1e-6, atol=1e-15)
    # by tolerance, on a small layer (order 7 per channel)
    tiny = crt.from_s4d(tiny_s4d(), length=300)
    by_tol = tiny.reduce(tol=1e-3)
    assert np.all(by_tol.records()["err_window"] <= 1e-3) and by_tol.orders().max() <= 7
    assert np.all(by_tol.records()["length"] == 300)
    assert by_tol.reduce(order=2, length=100).records()["length"][0] == 100
    with pytest.raises(ValueError, match="length"):
        mixed_model().reduce(order=2)
    assert mixed_model().reduce(order=2, length=200).orders().max() == 2
    with pytest.raises(ValueError, match="order=N or tol=EPS"):
        m.reduce()
