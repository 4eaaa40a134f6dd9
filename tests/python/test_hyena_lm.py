"""The committed Hyena-style language model (examples/hyena_lm.pt,
convrec.examples.hyena_lm) and its distillation: the checkpoint loads, the
FFT convolution equals direct convolution, the distilled model at a high
order reproduces the convolution model's logits, and generation step by step
equals running the recurrences over the whole sequence."""
import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import convrec  # noqa: E402
import convrec.examples.hyena_lm as hl  # noqa: E402

SRC = os.environ.get("CONVREC_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CKPT = os.path.join(SRC, "examples", "hyena_lm.pt")

TEXT = hl.SAMPLE_TEXT
# The high-order distillation and the tolerance on the logits.
# Measured by bench/lm_high_order.py (float64, 2 threads; fit time of the
# 512 filters): 1.85e-4 at N = 48 (6 s), 2.0e-4 at 64 (10 s), 9.8e-5 at 80
# (17 s), 6.0e-5 at 88 (80 s), 4.5e-5 at 96 (261 s). The slowly decaying
# channels of every block limit it (docs/RESULTS.md, issue 12); N = 88 is
# the lowest order that meets 1e-4 with a margin (80 is within 2% of it).
HIGH_ORDER = 88
HIGH_ORDER_TOL = 1e-4
# float32 networks: the step and the chunked scan sum in different orders
# through four blocks (layer norms, gates); each is about 1e-4 from float64
# (the float32 network's own rounding), measured 1.6e-5 to 7.8e-5 apart
F32_NET = 3e-4


def tokens(b=TEXT):
    return torch.tensor([list(b)], dtype=torch.int64)


def rel(a, b):
    return float(torch.linalg.norm(a.double() - b.double()) / torch.linalg.norm(b.double()))


@pytest.fixture(scope="module")
def lm():
    return hl.HyenaLM.load(CKPT, dtype=torch.float64)


@pytest.fixture(scope="module")
def conv_logits(lm):
    with torch.no_grad():
        return lm(tokens())


def test_checkpoint_loads(lm):
    assert lm.config == dict(hl.DEFAULTS)
    assert lm.length == 2048 and len(lm.blocks) == 4
    info = lm.info
    assert info["corpus"] == hl.CORPUS_DIR and len(info["corpus_sha256"]) == 64
    last = info["history"][-1]
    assert last["step"] == info["steps"]
    # the recorded held-out loss is far below a uniform byte model's log(256)
    assert last["heldout_nll"] < 0.5 * math.log(256)
    # the model predicts its own kind of text much better than chance
    with torch.no_grad():
        x = tokens()
        nll = float(torch.nn.functional.cross_entropy(lm(x[:, :-1])[0], x[0, 1:]))
    assert nll < 0.5 * math.log(256)


def test_checkpoint_is_refused_when_not_one(tmp_path):
    p = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(3)}, p)
    with pytest.raises(ValueError, match="not a hyena_lm checkpoint"):
        hl.HyenaLM.load(p)


def test_fft_conv_equals_direct_convolution(lm):
    g = torch.Generator().manual_seed(3)
    v = torch.randn(2, 128, 300, generator=g, dtype=torch.float64)
    b = lm.blocks[1]
    with torch.no_grad():
        got = b.conv(v)
        h = b.filter.impulse_responses(300)
    want = np.stack([[np.convolve(h[c], v[i, c].numpy())[:300] for c in range(128)] for i in range(2)])
    assert rel(got, torch.from_numpy(want)) < 1e-12


def test_filters_are_hyena_implicit_filters(lm):
    """The materialised filter follows the documented formula: MLP of the
    positional features times exp(-|a_c| t), rates linspace(log(1e-2)/1.5, log(1e-2)/0.3, D)."""
    f = lm.blocks[0].filter
    with torch.no_grad():
        z = hl.positional_features(f.length, f.emb_dim)
        h = f.mlp(z).T * torch.exp(-z[:, 0][None, :] * f.decay[:, None])
    assert rel(f.kernels(), h) < 1e-15
    a = np.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, f.channels)
    assert np.allclose(f.decay.numpy(), np.abs(a), rtol=1e-6)
    assert z.shape == (2048, 33) and float(z[-1, 0]) == 1.0 and float(z[0, 1]) == 1.0


@pytest.mark.slow
def test_high_order_distillation_reproduces_the_logits(lm, conv_logits):
    rec = hl.distill(lm, order=HIGH_ORDER, dtype=torch.float64)
    for m in rec.models:
        m.check_stable()
        r = m.records()
        assert np.all(r["err_window"] >= 0) and np.all(np.isfinite(r["err_window"]))
    with torch.no_grad():
        got = rec(tokens())
    assert rel(got, conv_logits) < HIGH_ORDER_TOL


@pytest.fixture(scope="module")
def rec16(lm):
    return hl.distill(lm, order=16, dtype=torch.float64)


def cancellation(m, L=2048):
    """Per channel: the sum of the norms (k < L) of the real columns of the
    modal sum, w Re(r) Re(lambda^k) and w Im(r) Im(lambda^k), over the norm of
    the kernel (1 when nothing cancels)."""
    k = np.arange(L)
    pw = m.poles[:, :, None] ** k                                   # (C, M, L)
    w = np.where(m.kinds == 2, 2.0, np.where(m.kinds == 1, 1.0, 0.0))
    cols = (w * np.abs(m.residues.real))[:, :, None] * pw.real, (w * np.abs(m.residues.imag))[:, :, None] * pw.imag
    l1 = sum(np.linalg.norm(c, axis=2).sum(1) for c in cols)
    return l1 / np.linalg.norm(m.kernel(L + 1)[:, 1:], axis=1)


def test_fits_do_not_cancel_and_run_in_float32(lm, rec16):
    """Regression: the unconstrained refinement gave some of these channels
    nearly coinciding poles with huge opposite residues (cancellation 3e8),
    exact in float64 and meaningless in float32 (logits 2.6e-2 off)."""
    for m in rec16.models:
        assert cancellation(m).max() < 2e4     # the fit's bound is 1e4 on its own measure
    rec32 = hl.RecurrentLM(lm, rec16.models, torch.float32)
    with torch.no_grad():
        assert rel(rec32(tokens()), rec16(tokens())) < F32_NET   # 2.6e-2 before the fix


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, F32_NET)])
def test_steps_equal_the_whole_sequence(lm, rec16, dtype, tol):
    rec = hl.RecurrentLM(lm, rec16.models, dtype)
    x = torch.cat([tokens(), tokens()[:, :57]], 1)              # two sequences' worth, B = 2 below
    x = torch.cat([x, x.flip(1)])
    with torch.no_grad():
        whole = rec(x)
        last, st = rec.prefill(x[:, :40])
        steps = [last]
        for t in range(40, x.shape[1] - 1):
            last, st = rec.step(x[:, t], st)
            steps.append(last)
    assert rel(torch.stack(steps, 1), whole[:, 39:-1]) < tol
    # a clone of the state forks the generation: both continue identically
    fork = [(a.clone(), b.clone()) for a, b in st]
    y1, _ = rec.step(x[:, -1], st)
    y2, _ = rec.step(x[:, -1], fork)
    assert torch.equal(y1, y2)


def test_fft_prefill_equals_the_scan(rec16):
    x = torch.cat([tokens(), tokens().flip(1)])
    with torch.no_grad():
        a, sa = rec16.prefill(x, method="recurrence")
        b, sb = rec16.prefill(x, method="fft")
    assert rel(b, a) < 1e-12
    for (ha, xa), (hb, xb) in zip(sa, sb):
        assert rel(hb, ha) < 1e-12
        assert rel(torch.view_as_real(xb), torch.view_as_real(xa)) < 1e-12
    with pytest.raises(ValueError, match="method"):
        rec16.prefill(x, method="magic")


def test_cached_convolution_steps_equal_the_model(lm, conv_logits):
    c = hl.CachedConvLM(lm)
    x = tokens()
    last, st = c.prefill(x[:, :25])
    out = [last]
    for t in range(25, x.shape[1]):
        last, st = c.step(x[:, t], st)
        out.append(last)
    assert rel(torch.stack(out[:-1], 1), conv_logits[:, 24:-1]) < 1e-12


def test_generation_runs_past_the_context_and_stays_finite(lm, rec16):
    rec = hl.RecurrentLM(lm, rec16.models, torch.float32)
    g = torch.Generator().manual_seed(0)
    out = rec.generate(tokens()[:, :20], 50, temperature=1.0, generator=g)
    assert out.shape == (1, 70) and int(out.min()) >= 0 and int(out.max()) < 256
    assert torch.equal(out[:, :20], tokens()[:, :20])
    greedy = rec.generate(tokens()[:, :20], 10, temperature=0)
    assert torch.equal(greedy, rec.generate(tokens()[:, :20], 10, temperature=0))
    # the recurrences are not limited to the filters' length; the convolution model is
    long = torch.zeros(1, lm.length + 5, dtype=torch.int64) + ord(" ")
    with torch.no_grad():
        assert bool(torch.isfinite(rec(long)).all())
    with pytest.raises(ValueError, match="context is 2048"):
        lm(long)


def test_bad_tokens_are_refused(lm, rec16):
    for bad in (torch.tensor([[1, 300]]), torch.tensor([[1.0, 2.0]]), torch.tensor([1, 2]),
                torch.zeros(1, 0, dtype=torch.int64)):
        with pytest.raises(ValueError):
            lm(bad)
        with pytest.raises(ValueError):
            rec16(bad)


def test_distilled_models_are_convrec_models(rec16, tmp_path):
    """Each block's recurrence is an ordinary convrec.Model: saved and loaded
    through the library, it gives the same kernels."""
    m = rec16.models[2]
    p = tmp_path / "block2.safetensors"
    m.save(str(p))
    back = convrec.Model.load(str(p))
    assert np.array_equal(back.kernel(64), m.kernel(64))
    assert list(back.orders()) == [16] * 128


def test_tolerance_fits_of_hard_filters_succeed(lm):
    """Regression: with OpenBLAS on 2 threads, dgesdd did not converge on a
    pencil matrix of these channels (block 2, channels 70..79, tol 1e-4) and
    the fit failed with "fit_pencil: QR/dgesdd failed (info 1)"; the SVD now
    falls back to dgesvd (src/core/svd.c)."""
    h = hl.filter_bank(lm)[2][70:80]
    m = convrec.fit(h, tol=1e-4, max_order=96)
    r = m.records()
    assert np.all(np.isfinite(r["err_window"])) and np.all(r["order"] <= 96)
    assert np.all((r["err_window"] <= 1e-4) | (r["order"] == 96))
