"""The published S4D classifier for sequential CIFAR-10 (shared data:
checkpoints/s4d_scifar.pth), rebuilt in torch, run two ways:

- convolution mode, as trained: each S4D layer convolves its (H, L) kernel
  with the whole sequence by FFT (size 2L), then GELU, a 1x1 convolution and
  GLU; post-norm residual blocks; mean over the L positions; a linear decoder.
- streaming mode, one pixel per step: each S4D layer is a convrec recurrence
  (convrec.torch.from_s4d, exact; backend "c" = libconvrec's stream, or
  "torch"), every other operation acts on the current position only, and the
  mean is accumulated, so the logits after the last pixel equal the
  convolution logits (to rounding) with O(1) work and memory per pixel.

    import torch, convrec.examples.s4d_scifar as ex
    net = ex.S4DClassifier.from_checkpoint("s4d_scifar.pth")
    x = ex.normalize(images)                        # (B, 3, 32, 32) in [0, 1] -> (B, 1024, 3)
    logits = net(x)                                  # convolution mode
    stream = ex.StreamingClassifier(net, backend="c", dtype=torch.float32)
    logits_streamed = stream(x)                      # pixel by pixel

Architecture (facts about the published model; see the shared data README):
encoder Linear(3, 128); 4 x [S4D(H = 128, N = 64, i.e. 32 conjugate pairs)
-> GELU (erf) -> Conv1d(128, 256, 1) -> GLU over channels; x = LayerNorm(z + x)];
mean over positions; decoder Linear(128, 10).
"""
import copy

import torch
from torch import nn
from torch.nn import functional as F

from .. import torch as crt

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)


def normalize(images):
    """RGB images (B, 3, 32, 32) with values in [0, 1] -> the network's input:
    normalised per channel, flattened row-major to (B, 1024, 3)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), not {tuple(images.shape)}")
    mean = torch.tensor(MEAN, dtype=images.dtype, device=images.device)[None, :, None, None]
    std = torch.tensor(STD, dtype=images.dtype, device=images.device)[None, :, None, None]
    x = (images - mean) / std
    return x.flatten(2).transpose(1, 2)


class _S4DKernelParams(nn.Module):
    # parameter names as in state-spaces/s4's standalone S4D (kernel.*)
    def __init__(self, H, N2):
        super().__init__()
        self.log_dt = nn.Parameter(torch.zeros(H))
        self.log_A_real = nn.Parameter(torch.zeros(H, N2))
        self.A_imag = nn.Parameter(torch.zeros(H, N2))
        self.C = nn.Parameter(torch.zeros(H, N2, 2))


class S4DLayer(nn.Module):
    """One S4D block: y = GLU(Conv1x1(GELU(causal_conv(K, u) + D u)))."""

    def __init__(self, H, N2):
        super().__init__()
        self.D = nn.Parameter(torch.zeros(H))
        self.kernel = _S4DKernelParams(H, N2)
        self.output_linear = nn.Sequential(nn.Conv1d(H, 2 * H, kernel_size=1), nn.GLU(dim=-2))

    def conv_kernel(self, L, dtype=None):
        """The layer's kernel K (H, L) by its own formula, in `dtype` (default:
        the parameters' dtype; float64 gives the exact kernel of the float32
        weights, up to float64 rounding)."""
        sd = {k: v.detach() for k, v in self.state_dict().items()}
        return crt.s4d_kernel(sd, L, dtype=dtype or self.D.dtype).to(self.D.device)

    def forward(self, u, k=None):
        """u (B, H, L) -> (B, H, L); k: the kernel (H, L), computed if None."""
        L = u.shape[-1]
        k = self.conv_kernel(L) if k is None else k.to(u.dtype)
        y = torch.fft.irfft(torch.fft.rfft(u, n=2 * L) * torch.fft.rfft(k, n=2 * L), n=2 * L)[..., :L]
        return self.output_linear(F.gelu(y + u * self.D[:, None]))

    def pointwise(self, y_t):
        """The part after the convolution for one position: y_t (B, H), which
        already includes D u_t -> (B, H)."""
        w = self.output_linear[0]
        return F.glu(F.linear(F.gelu(y_t), w.weight[:, :, 0], w.bias), dim=-1)


class S4DClassifier(nn.Module):
    """The sequential CIFAR-10 S4D network; input (B, L, 3) normalised pixels."""

    def __init__(self, n_layers=4, H=128, N2=32, d_input=3, d_output=10):
        super().__init__()
        self.encoder = nn.Linear(d_input, H)
        self.s4_layers = nn.ModuleList([S4DLayer(H, N2) for _ in range(n_layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(H) for _ in range(n_layers)])
        self.decoder = nn.Linear(H, d_output)

    @classmethod
    def from_state_dict(cls, state_dict):
        """Built with the shapes of `state_dict` and loaded strictly (a missing or
        unexpected key, or a wrong shape, is an error naming it)."""
        n = 0
        while f"s4_layers.{n}.D" in state_dict:
            n += 1
        if n == 0 or "encoder.weight" not in state_dict or "decoder.weight" not in state_dict:
            raise KeyError("S4DClassifier: not an S4D classifier state dict (needs encoder.*, "
                           "s4_layers.0.*, decoder.*)")
        H, d_input = state_dict["encoder.weight"].shape
        N2 = state_dict["s4_layers.0.kernel.log_A_real"].shape[1]
        net = cls(n, H, N2, d_input, state_dict["decoder.weight"].shape[0])
        net.load_state_dict(state_dict, strict=True)
        return net.eval()

    @classmethod
    def from_checkpoint(cls, path):
        ck = torch.load(path, map_location="cpu")
        if not isinstance(ck, dict) or "model" not in ck:
            raise KeyError(f"{path}: expected a checkpoint dict with the state dict under 'model'")
        return cls.from_state_dict(ck["model"])

    def kernels(self, L, dtype=torch.float64):
        """Every layer's convolution kernel (H, L), evaluated in dtype."""
        return [layer.conv_kernel(L, dtype) for layer in self.s4_layers]

    def forward(self, x, kernel_dtype=torch.float64, kernels=None):
        """Convolution mode: x (B, L, 3) -> logits (B, 10). The kernels are
        evaluated in kernel_dtype (float64: exact; the layer's own float32
        evaluation of exp(dt A k) carries a phase error of up to ~L |dt A| eps),
        or given (a list from kernels(L), to evaluate them once), and the rest
        runs in the parameters' dtype."""
        L = x.shape[1]
        ks = self.kernels(L, kernel_dtype) if kernels is None else kernels
        z = self.encoder(x).transpose(1, 2)                       # (B, H, L)
        for layer, norm, k in zip(self.s4_layers, self.norms, ks):
            if k.shape[-1] < L:
                raise ValueError(f"kernel of length {k.shape[-1]} for a sequence of {L}")
            y = layer(z, k[..., :L])
            z = norm((y + z).transpose(1, 2)).transpose(1, 2)
        return self.decoder(z.mean(dim=2))


class StreamingClassifier(nn.Module):
    """The same network, one pixel per step: a convrec Recurrence per S4D layer
    (exact modal import, no fit), the pointwise parts per step, the mean
    accumulated. dtype float32 or float64; backend "c" or "torch"."""

    def __init__(self, net, backend="c", dtype=torch.float32):
        super().__init__()
        self.net = copy.deepcopy(net).to(dtype).eval()
        self.dtype = dtype
        sd = net.state_dict()
        self.recs = nn.ModuleList([
            crt.Recurrence(crt.from_s4d(sd, prefix=f"s4_layers.{i}."), dtype=dtype, backend=backend)
            for i in range(len(net.s4_layers))])

    def initial_state(self, batch):
        return {"layers": [None] * len(self.recs), "sum": None, "t": 0, "batch": int(batch)}

    @torch.no_grad()
    def step(self, pixel, state):
        """pixel (B, 3) -> the new state (layer states, running sum, count)."""
        z = self.net.encoder(pixel.to(self.dtype))
        layers = list(state["layers"])
        for i, (rec, layer, norm) in enumerate(zip(self.recs, self.net.s4_layers, self.net.norms)):
            y, layers[i] = rec.step(z, layers[i])
            z = norm(layer.pointwise(y) + z)
        total = z if state["sum"] is None else state["sum"] + z
        return {"layers": layers, "sum": total, "t": state["t"] + 1, "batch": state["batch"]}

    def logits(self, state):
        """The logits of the pixels seen so far (the mean over them)."""
        if state["t"] == 0:
            raise ValueError("no pixel seen yet")
        return self.net.decoder(state["sum"] / state["t"])

    @torch.no_grad()
    def forward(self, x):
        """x (B, L, 3) -> logits (B, 10), pixel by pixel."""
        state = self.initial_state(x.shape[0])
        for t in range(x.shape[1]):
            state = self.step(x[:, t], state)
        return self.logits(state)
