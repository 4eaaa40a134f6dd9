"""convrec fit/hsv/verify CKPT.safetensors --tensor NAME: a named tensor of a
safetensors checkpoint as the kernel bank, for each dtype and layout, checked
against the same values given as .npy; bad checkpoints and names."""
import json
import os

import numpy as np
import pytest

from conftest import data_file, run

torch = pytest.importorskip("torch")
crt = pytest.importorskip("convrec.torch")


def bank(C=3, L=400, seed=0):
    """Decaying oscillations with a little noise: kernels of order ~10."""
    rng = np.random.default_rng(seed)
    k = np.arange(L)
    h = np.zeros((C, L))
    for c in range(C):
        for _ in range(4):
            r, w = rng.uniform(0.9, 0.99), rng.uniform(0.05, 2.5)
            h[c] += rng.normal() * r ** k * np.cos(w * k + rng.uniform(0, 6))
    return h


def model_arrays(path):
    info = json.loads(run("info", path, "--json").stdout)
    return [(ch["order"], ch["err_window"], [(md["pole"], md["residue"]) for md in ch["modes"]])
            for ch in info["channel"]]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("layout", ["L", "CL", "C1L"])
def test_fit_tensor_equals_npy(tmp, dtype, layout):
    h = bank()
    t = torch.tensor(h).to(dtype)
    if layout == "L":
        t = t[0]
    elif layout == "C1L":
        t = t[:, None, :]
    ck = tmp / "ckpt.safetensors"
    crt.save_safetensors({"layer.kernel": t, "layer.bias": torch.zeros(3), "step": torch.tensor(7)}, ck)
    # the same values, converted exactly to float64, as .npy
    ref = t.double().reshape(-1, h.shape[1]).numpy()
    npy = tmp / "k.npy"
    np.save(npy, ref[0] if layout == "L" else ref)
    run("fit", ck, "--tensor", "layer.kernel", "-o", tmp / "a.safetensors", "--order", "8", "-q")
    run("fit", npy, "-o", tmp / "b.safetensors", "--order", "8", "-q")
    a, b = model_arrays(tmp / "a.safetensors"), model_arrays(tmp / "b.safetensors")
    assert len(a) == (1 if layout == "L" else 3)
    assert a == b  # the same kernels in: the same model out, bit for bit
    # hsv and verify read it the same way
    p1 = run("hsv", ck, "--tensor", "layer.kernel", "-n", "5", "--json")
    p2 = run("hsv", npy, "-n", "5", "--json")
    assert json.loads(p1.stdout)["hsv"] == json.loads(p2.stdout)["hsv"]
    v = run("verify", tmp / "a.safetensors", ck, "--tensor", "layer.kernel", "--steps", "2000", "--json")
    assert json.loads(v.stdout)


def test_fit_tensor_bad(tmp):
    ck = tmp / "ckpt.safetensors"
    h = torch.tensor(bank())
    bad = h.clone()
    bad[1, 17] = float("nan")
    crt.save_safetensors({"k": h.float(), "ints": torch.arange(12).reshape(3, 4), "w4": h.reshape(3, 1, 4, 100),
                          "w2": torch.stack([h, h], 1), "nan": bad, "empty": torch.zeros(3, 0)}, ck)
    out = tmp / "m.safetensors"

    def fails(*args, code=None, says=()):
        p = run("fit", ck, "-o", out, "--order", "4", *args, check=False)
        assert p.returncode != 0 and (code is None or p.returncode == code), p
        for s in says:
            assert s in p.stderr, p.stderr
        assert not out.exists()
        assert "Traceback" not in p.stderr and "Sanitizer" not in p.stderr
        return p

    # no --tensor: a usage error that lists what the file holds
    p = fails(code=2, says=("--tensor NAME", "k (F32, 3x400)", "ints (I64, 3x4)"))
    fails("--tensor", "nope", says=("nope", "k"))                  # a missing name lists the tensors
    fails("--tensor", "ints", says=("I64",))                       # unsupported dtype
    fails("--tensor", "w4", says=("shape",))                       # 4-D
    fails("--tensor", "w2", says=("shape",))                       # (C, 2, L) is no conv1d depthwise weight
    fails("--tensor", "nan", says=("NaN",))
    fails("--tensor", "empty")
    # not a safetensors file at all, and a truncated one
    junk = tmp / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    p = run("fit", junk, "--tensor", "k", "-o", out, check=False)
    assert p.returncode == 1 and not out.exists() and "junk.safetensors" in p.stderr
    raw = ck.read_bytes()
    cut = tmp / "cut.safetensors"
    cut.write_bytes(raw[: len(raw) - 100])
    p = run("fit", cut, "--tensor", "k", "-o", out, check=False)
    assert p.returncode == 1 and not out.exists()
    # --tensor with a .npy array
    np.save(tmp / "k.npy", bank())
    p = run("fit", tmp / "k.npy", "--tensor", "k", "-o", out, check=False)
    assert p.returncode == 2 and ".npy" in p.stderr and not out.exists()
    # the output may not be the checkpoint itself
    p = run("fit", ck, "--tensor", "k", "-o", ck, "--order", "4", check=False)
    assert p.returncode != 0 and ck.read_bytes() == raw


def test_s4d_checkpoint_kernels(tmp):
    """A real trained layer: the S4D checkpoint's layer-0 kernels as a conv1d
    weight (C, 1, L) in float32, fitted from the command line at order 16:
    the recorded errors are those of the model against the float32 kernels
    (recomputed here with numpy), and the H-inf error respects the Hankel
    lower bound sigma_N+1."""
    import convrec

    sd = torch.load(data_file("checkpoints", "s4d_scifar.pth"), map_location="cpu", weights_only=False)
    sd = sd.get("model", sd)
    K = crt.s4d_kernel(sd, 1024, prefix="s4_layers.0.")[:8].float()
    ck = tmp / "s4d_layer0.safetensors"
    crt.save_safetensors({"s4_layers.0.kernel": K[:, None, :]}, ck)
    out = tmp / "m.safetensors"
    run("fit", ck, "--tensor", "s4_layers.0.kernel", "-o", out, "--order", "16", "-q")
    info = json.loads(run("info", out, "--json").stdout)
    assert info["channels"] == 8
    Km = convrec.Model.load(str(out)).kernel(1024)
    Kf = K.double().numpy()
    for c, ch in enumerate(info["channel"]):
        assert ch["order"] <= 16 and ch["stable"]
        e = np.linalg.norm(Km[c] - Kf[c]) / np.linalg.norm(Kf[c])
        assert abs(e - ch["err_window"]) <= 1e-9 * max(e, 1e-300) + 1e-14, (c, e, ch["err_window"])
        assert ch["err_hinf"] >= ch["sigma_next"] * (1 - 1e-9)  # no model of order N beats sigma_N+1
