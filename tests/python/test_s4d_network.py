"""The S4D sequential-CIFAR network (convrec.examples.s4d_scifar): streamed
pixel by pixel through convrec recurrences, its logits equal the convolution
(FFT) logits, for both backends, in float32 and float64."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import convrec.examples.s4d_scifar as ex  # noqa: E402
from conftest import data_file  # noqa: E402


@pytest.fixture(scope="module")
def net():
    return ex.S4DClassifier.from_checkpoint(data_file("checkpoints", "s4d_scifar.pth"))


@pytest.fixture(scope="module")
def images():
    """Three 32x32 RGB inputs in [0, 1]: two of noise, one smooth."""
    g = torch.Generator().manual_seed(7)
    noise = torch.rand(2, 3, 32, 32, generator=g, dtype=torch.float64)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32, dtype=torch.float64),
                            torch.linspace(0, 1, 32, dtype=torch.float64), indexing="ij")
    smooth = torch.stack([xx, yy, 0.5 + 0.5 * torch.sin(6 * xx * yy)])[None]
    return torch.cat([noise, smooth])


def rel(a, b):
    return float(torch.linalg.norm(a.double() - b.double()) / torch.linalg.norm(b.double()))


@pytest.fixture(scope="module")
def conv_logits(net, images):
    with torch.no_grad():
        return {dt: net.to(dt)(ex.normalize(images).to(dt)) for dt in (torch.float64, torch.float32)}


def test_checkpoint_loads_strictly(net):
    assert len(net.s4_layers) == 4 and net.encoder.weight.shape == (128, 3)
    sd = dict(net.state_dict())
    del sd["s4_layers.2.kernel.A_imag"]
    with pytest.raises(RuntimeError, match="s4_layers.2.kernel.A_imag"):
        ex.S4DClassifier.from_state_dict(sd)


def test_convolution_mode_is_the_layer_formula(net, images, conv_logits):
    """The float32 network agrees with the float64 one; with the kernels
    evaluated in float32 as in training, up to that evaluation's rounding."""
    x = ex.normalize(images)
    assert rel(conv_logits[torch.float32], conv_logits[torch.float64]) <= 1e-6
    with torch.no_grad():
        as_trained = net.to(torch.float32)(x.float(), kernel_dtype=torch.float32)
    assert rel(as_trained, conv_logits[torch.float64]) <= 1e-4


@pytest.mark.parametrize("backend", ["c", "torch"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_streaming_logits_equal_convolution_logits(net, images, conv_logits, backend, dtype, tol):
    stream = ex.StreamingClassifier(net, backend=backend, dtype=dtype)
    x = ex.normalize(images).to(dtype)
    logits = stream(x)
    assert logits.dtype == dtype and logits.shape == (3, 10)
    assert rel(logits, conv_logits[dtype]) <= tol
    assert torch.equal(logits.argmax(1), conv_logits[torch.float64].argmax(1))
    # the running logits after t pixels are those of the first t pixels
    state = stream.initial_state(3)
    for t in range(100):
        state = stream.step(x[:, t], state)
    with torch.no_grad():
        prefix = net.to(dtype)(x[:, :100])
    assert rel(stream.logits(state), prefix) <= tol
