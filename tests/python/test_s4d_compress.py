"""The compression study's machinery (convrec.examples.s4d_compress) on a tiny
subset of the S4D network (layer 0, 4 channels, N = 8): the per-channel
reduction is Model.reduce, the reduced network's kernels are those of the
reduced models, its streamed form computes the same logits, and an order
that loses nothing changes nothing. The full study is
bench/study_s4d_compress.py."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import convrec  # noqa: E402
import convrec.examples.s4d_scifar as ex  # noqa: E402
import convrec.examples.s4d_compress as sc  # noqa: E402
from conftest import data_file, rel_l2  # noqa: E402

CH = [0, 5, 77, 100]
L = 1024


@pytest.fixture(scope="module")
def net():
    return ex.S4DClassifier.from_checkpoint(data_file("checkpoints", "s4d_scifar.pth")).double()


@pytest.fixture(scope="module")
def layer0(net):
    return net.layer_models(L)[0]


@pytest.fixture(scope="module")
def red(layer0):
    return sc.reduce_layer(layer0, 8, channels=CH)


def sub_model(m, channels):
    """The given channels of m as a model of its own (from its modes)."""
    use = m.kinds[channels] != 0
    return convrec.Model.from_modes(np.where(use, m.poles[channels], np.nan), m.residues[channels],
                                    m.d[channels])


def test_exact_layer_models_give_the_network_kernels(net):
    for k, ref in zip(net.kernels_of(net.layer_models(L), L), net.kernels(L)):
        assert float((k - ref).abs().max() / ref.abs().max()) <= 1e-12


def test_reduce_layer_is_model_reduce(layer0, red):
    assert red["channels"] == CH and red["kernels"].shape == (4, L)
    assert all(m.orders()[0] == 8 for m in red["models"]) and np.all(red["records"]["order"] == 8)
    whole = sub_model(layer0, CH).reduce(order=8, length=L)
    assert rel_l2(red["kernels"], whole.kernel(L)) <= 1e-12
    h = layer0.kernel(L)[CH]
    for i in range(4):
        e = rel_l2(red["kernels"][i], h[i])
        assert abs(red["records"]["err_window"][i] - e) <= 1e-9 * max(e, 1e-300)
        # no order-8 model beats the Hankel singular value it drops: the error's
        # Hankel operator H - Hhat (rank Hhat <= 8) has norm >= sigma_9, and that
        # norm is <= the H-inf error (sampled on a grid here, hence the slack)
        assert red["records"]["err_hinf"][i] >= 0.99 * red["records"]["sigma_next"][i] > 0
    assert np.all(red["seconds"] > 0) and red["wall"] >= red["seconds"].sum() * 0.5
    km = sc.kernel_metrics(red)
    assert km["err_max"] == pytest.approx(red["records"]["err_window"].max())
    assert km["channels"] == 4 and len(km["slowest"]) == 4


def test_study_tiny_subset(net, red):
    x = sc.random_images(2, seed=3)
    res = sc.study(net, {"random": x}, orders=(8,), layers=[0], channels=CH, per_layer=True)
    r = res["results"][0]
    lm = r["logits"]["random"]
    # 4 of 512 channels at order 8: a small change, not none
    assert 0 < lm["rel_max"] < 0.2 and lm["n"] == 2 and 0 <= lm["agree"] <= 1
    assert r["kernels"][0]["err_median"] == pytest.approx(sc.kernel_metrics(red)["err_median"], rel=1e-9)
    assert r["per_layer"][0]["random"]["rel_max"] == pytest.approx(lm["rel_max"], rel=1e-12)
    # the same network built by hand from the reduced models, streamed pixel by pixel
    models = net.layer_models(L)
    models[0] = sc.with_channels(models[0], CH, red["models"])
    with torch.no_grad():
        conv = net(ex.normalize(x), kernels=net.kernels_of(models, L))
        ref = net(ex.normalize(x))
    stream = ex.StreamingClassifier(net, backend="c", dtype=torch.float64, models=models)
    assert rel_l2(stream(ex.normalize(x)).numpy(), conv.numpy()) <= 1e-10
    e = (torch.linalg.norm(conv - ref, dim=1) / torch.linalg.norm(ref, dim=1)).max()
    assert float(e) == pytest.approx(lm["rel_max"], rel=1e-9)
    text = sc.report(res)
    assert "| 8 | random (2) |" in text and "| 8 | 0 |" in text


def test_lossless_order_changes_nothing(net):
    # channel 0 of layer 0 has Hankel rank <= 64: at order 64 the fit is exact
    res = sc.study(net, {"random": sc.random_images(1)}, orders=(64,), layers=[0], channels=[0])
    r = res["results"][0]
    assert r["kernels"][0]["err_max"] <= 1e-8
    assert r["logits"]["random"]["rel_max"] <= 1e-8 and r["logits"]["random"]["agree"] == 1


def test_natural_images():
    pytest.importorskip("PIL")
    try:
        x, where = sc.natural_images()
    except LookupError as e:
        pytest.skip(str(e))
    assert x.shape == (sum(n for _, _, n in where), 3, 32, 32) and x.dtype == torch.float64
    assert all(n == 14 for _, _, n in where)
    assert float(x.min()) >= 0 and float(x.max()) <= 1 and float(x.std()) > 0.05
    # distinct crops, not copies
    flat = x.flatten(1)
    assert torch.cdist(flat, flat).add(torch.eye(len(x)) * 1e9).min() > 1e-3
    assert ex.normalize(x).shape == (len(x), 1024, 3)


def test_crops_are_area_averages():
    PIL = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    c = sc.crops(PIL.fromarray(a), grids=(1, 3))
    assert c.shape == (10, 3, 32, 32)
    # grid 1: the central 96x96 square in 3x3 blocks; grid 3, tile (1, 2): 32x32 as it is
    sq = a[:, 16:112].astype(np.float64) / 255
    blocks = sq.reshape(32, 3, 32, 3, 3).mean(axis=(1, 3)).transpose(2, 0, 1)
    assert np.abs(c[0].numpy() - blocks).max() <= 1 / 255
    assert np.abs(c[1 + 1 * 3 + 2].numpy() - sq[32:64, 64:96].transpose(2, 0, 1)).max() <= 1e-12
