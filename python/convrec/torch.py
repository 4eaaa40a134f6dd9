"""PyTorch bridge: S4D import, model tensors, and a recurrent nn.Module.

    import torch, convrec, convrec.torch as crt
    sd = torch.load("s4d_scifar.pth", map_location="cpu")["model"]
    m = crt.from_s4d(sd, prefix="s4_layers.0.", length=1024)  # exact, no fit
    small = m.reduce(order=16)                                  # a fitted, smaller Model
    rec = crt.Recurrence(m, dtype=torch.float32, backend="torch")
    y = rec(u)                          # u (B, C, T) -> y (B, C, T), from zero state
    y_t, state = rec.step(u_t, state)   # u_t (B, C), state (B, C, M) complex

convrec.fit / conv / hsv and Model.filter accept torch tensors directly (CPU;
float32 or float64; requires_grad is fine, the values are detached; tensors
on another device are copied to the CPU with a warning). The kernel of any
kernel-producing module (Hyena implicit filters, CKConv kernel networks,
LongConv) goes to convrec.fit in one call: convrec.fit(module_kernel, order=N).

Needs torch (Debian: python3-torch); `import convrec` itself does not.
"""
import collections
import math
from collections.abc import Mapping

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as e:  # a clear message instead of a bare "No module named torch"
    raise ImportError(f"convrec.torch needs PyTorch (Debian: apt-get install python3-torch): {e}") from e

from . import ConvrecError, Model, Stream

__all__ = ["from_s4d", "s4d_kernel", "modes", "kernel", "Recurrence", "Modes", "save_safetensors"]

_S4D_KEYS = ("kernel.log_dt", "kernel.log_A_real", "kernel.A_imag", "kernel.C", "D")

Modes = collections.namedtuple("Modes", "poles residues d kinds")
Modes.__doc__ = """A model's modes as tensors: poles and residues (C, M) complex,
d (C,) real, kinds (C, M) uint8 (0 unused, 1 real mode, 2 conjugate pair
stored once, weight 2)."""


def _complex_of(dtype):
    return {torch.float32: torch.complex64, torch.float64: torch.complex128}[dtype]


def _check_dtype(dtype, what):
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{what}: dtype must be torch.float32 or torch.float64, not {dtype}")
    return dtype


# ---------------------------------------------------------------------------
# S4D


def _s4d_params(state_dict, prefix):
    """The S4D layer's parameters from a state dict, validated, in float64."""
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"from_s4d: expected a state dict (a mapping of names to tensors), "
                        f"not {type(state_dict).__name__}")
    missing = [prefix + k for k in _S4D_KEYS if prefix + k not in state_dict]
    if missing:
        have = sorted(k for k in state_dict if isinstance(k, str) and k.startswith(prefix))
        hint = f"keys under {prefix!r}: {', '.join(have[:12])}{' ...' if len(have) > 12 else ''}" \
            if have else f"no key starts with {prefix!r}"
        raise KeyError(f"from_s4d: missing {', '.join(missing)} ({hint})")
    p = {}
    for k in _S4D_KEYS:
        v = state_dict[prefix + k]
        if not isinstance(v, torch.Tensor):
            try:
                v = torch.as_tensor(np.asarray(v))
            except Exception:
                raise TypeError(f"from_s4d: {prefix + k} is a {type(v).__name__}, not a tensor") from None
        if not (v.dtype.is_floating_point or (k == "kernel.C" and v.dtype.is_complex)):
            raise TypeError(f"from_s4d: {prefix + k} has dtype {v.dtype}; expected a floating-point tensor")
        v = v.detach().cpu()
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"from_s4d: {prefix + k} contains NaN or Inf")
        p[k] = v.to(torch.complex128 if v.dtype.is_complex else torch.float64)
    log_dt, lar, aim, C, D = (p[k] for k in _S4D_KEYS)
    if log_dt.ndim != 1 or log_dt.numel() == 0:
        raise ValueError(f"from_s4d: {prefix}kernel.log_dt has shape {tuple(log_dt.shape)}; expected (H,)")
    H = log_dt.shape[0]
    if lar.ndim != 2 or lar.shape[0] != H or lar.shape[1] == 0:
        raise ValueError(f"from_s4d: {prefix}kernel.log_A_real has shape {tuple(lar.shape)}; expected ({H}, N)")
    N = lar.shape[1]
    if tuple(aim.shape) != (H, N):
        raise ValueError(f"from_s4d: {prefix}kernel.A_imag has shape {tuple(aim.shape)}; expected ({H}, {N})")
    if C.is_complex():
        if tuple(C.shape) != (H, N):
            raise ValueError(f"from_s4d: {prefix}kernel.C has shape {tuple(C.shape)}; expected ({H}, {N}) "
                             f"complex or ({H}, {N}, 2) real")
    else:
        if tuple(C.shape) != (H, N, 2):
            raise ValueError(f"from_s4d: {prefix}kernel.C has shape {tuple(C.shape)}; expected ({H}, {N}, 2) "
                             f"(the real view of a complex ({H}, {N}) tensor)")
        C = torch.view_as_complex(C.contiguous())
    if tuple(D.shape) != (H,):
        raise ValueError(f"from_s4d: {prefix}D has shape {tuple(D.shape)}; expected ({H},)")
    dt = torch.exp(log_dt)
    A = torch.complex(-torch.exp(lar), aim)
    return dt, A, C, D


def _s4d_discrete(state_dict, prefix):
    """Zero-order hold as the layer does it: poles exp(dt A) and the layer's
    kernel coefficients C' = C (exp(dt A) - 1) / A, complex128 (H, N); and D."""
    dt, A, C, D = _s4d_params(state_dict, prefix)
    dtA = A * dt[:, None]
    pole = torch.exp(dtA)
    coef = C * (torch.exp(dtA) - 1.0) / A
    bad = ~torch.isfinite(torch.view_as_real(coef)).all(-1)
    if bool(bad.any()):
        h, n = (int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(f"from_s4d: {prefix}: channel {h} mode {n}: A = {complex(A[h, n])} gives a "
                         f"non-finite zero-order-hold coefficient")
    # Re(dt A) = -dt exp(log_A_real) < 0 unless it underflowed: then the mode
    # never decays (|pole| is 1 up to rounding) and is refused like |pole| >= 1
    r = pole.abs()
    out = (r >= 1) | (dtA.real >= 0)
    if bool(out.any()):
        h, n = (int(i) for i in torch.nonzero(out)[0])
        raise ValueError(f"from_s4d: {prefix}: channel {h} mode {n}: |exp(dt A)| = {float(r[h, n])!r} "
                         f"(Re(dt A) = {float(dtA.real[h, n])!r}) is not inside the unit disk")
    return pole, coef, D


def s4d_kernel(state_dict, L, prefix="", dtype=torch.float64):
    """The S4D layer's own convolution kernel K (H, L), computed the way the
    layer computes it (Vandermonde product, 2 Re sum_n C'_n exp(dtA_n k)),
    here in `dtype` (float64 by default); the layer's output is
    causal_conv(K, u) + D u. D is not included."""
    _check_dtype(dtype, "s4d_kernel")
    dt, A, C, _ = _s4d_params(state_dict, prefix)
    cd = _complex_of(dtype)
    dt, A, C = dt.to(dtype), A.to(cd), C.to(cd)
    dtA = A * dt[:, None]
    Ck = C * (torch.exp(dtA) - 1.0) / A
    k = torch.arange(int(L), dtype=dtype)
    return 2 * torch.einsum("hn,hnl->hl", Ck, torch.exp(dtA[:, :, None] * k)).real


_ST_DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
              torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
              torch.uint8: "U8", torch.bool: "BOOL"}


def save_safetensors(tensors, path, metadata=None):
    """Write a dict of CPU tensors as a .safetensors file (the format of the
    safetensors library, which Debian does not package): what
    `convrec fit CKPT.safetensors --tensor NAME` reads, e.g. the kernels of a
    long-convolution layer, (C, L) or a conv1d weight (C, 1, L), in F32, F64,
    F16 or BF16. Tensors are written contiguous, little-endian, in name
    order; metadata is an optional dict of strings. The file is written
    whole to a temporary name and renamed, so a failure leaves no partial
    file."""
    import json
    import os
    import tempfile

    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"save_safetensors: {name!r} is a {type(t).__name__}, not a torch.Tensor")
        if t.dtype not in _ST_DTYPES:
            raise TypeError(f"save_safetensors: {name!r}: dtype {t.dtype} has no safetensors name")
        t = t.detach().to("cpu").contiguous()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
        b = raw.astype(raw.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)  # the data section starts 8-byte aligned
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".st-", dir=d)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it
        with os.fdopen(fd, "wb") as f:
            f.write(len(js).to_bytes(8, "little"))
            f.write(js)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def from_s4d(state_dict, prefix="", length=None):
    """The exact modal model (a convrec.Model) of one S4D layer of
    state-spaces/s4 (the standalone S4D: kernel.log_dt (H,), kernel.log_A_real
    and kernel.A_imag (H, N), kernel.C (H, N, 2), the real view of a complex
    tensor, and D (H,)), found under `prefix` (e.g. "s4_layers.0.").

    No fit: zero-order hold in closed form, in float64 from the stored values.
    With dtA = exp(log_dt) A, A = -exp(log_A_real) + i A_imag, the layer's
    kernel is K[k] = 2 Re sum_n C'_n exp(dtA_n)^k with C'_n = C_n (exp(dtA_n) - 1) / A_n,
    and its impulse response is K + D delta. In convrec's convention
    (hhat[0] = d, hhat[k] = sum 2 Re(r lambda^(k-1)) for k >= 1):
        poles lambda = exp(dtA),  residues r = C' lambda,  d = D + K[0] = D + 2 Re sum_n C'_n.
    Order 2N per channel (N conjugate pairs; a mode with A_imag exactly 0 is a
    real mode of order 1). `length` (optional, e.g. the training length
    1024) records the errors against the layer's own kernel at that length
    (so that model.reduce() knows its length); they are at rounding level.

    Raises KeyError naming missing keys, ValueError for mis-shaped or
    non-finite parameters or poles outside the unit disk, TypeError for
    non-tensors; nothing is built then."""
    pole, coef, D = _s4d_discrete(state_dict, prefix)
    real = pole.imag == 0
    res = torch.where(real, 2 * coef.real * pole.real + 0j, coef * pole)
    d = D + 2 * coef.real.sum(-1)
    m = Model.from_modes(pole.numpy(), res.numpy(), d.numpy())
    if length is not None:
        L = int(length)
        if L < 2:
            raise ValueError(f"from_s4d: length must be >= 2, not {length}")
        h = s4d_kernel(state_dict, L, prefix).numpy().copy()
        h[:, 0] += D.numpy()
        m._set_records_against(h)
    return m


# ---------------------------------------------------------------------------
# Model tensors


def modes(model, dtype=torch.float64, device=None):
    """A convrec.Model's poles, residues (complex), d and kinds as tensors
    (Modes); dtype float64 gives complex128 modes, float32 complex64."""
    if not isinstance(model, Model):
        raise TypeError(f"modes: expected a convrec.Model, not {type(model).__name__}")
    _check_dtype(dtype, "modes")
    cd = _complex_of(dtype)
    return Modes(torch.from_numpy(model.poles).to(device=device, dtype=cd),
                 torch.from_numpy(model.residues).to(device=device, dtype=cd),
                 torch.from_numpy(model.d).to(device=device, dtype=dtype),
                 torch.from_numpy(model.kinds).to(device=device))


def kernel(model, L, dtype=torch.float64, device=None):
    """The model's impulse responses (C, L) as a tensor (computed in float64
    by libconvrec)."""
    _check_dtype(dtype, "kernel")
    return torch.from_numpy(model.kernel(L)).to(device=device, dtype=dtype)


# ---------------------------------------------------------------------------
# The recurrent module


def _split(z64, cd):
    """hi + lo pair of a complex128 tensor in complex dtype cd (lo = 0 for complex128)."""
    hi = z64.to(cd)
    return hi, (z64 - hi.to(torch.complex128)).to(cd)


class Recurrence(nn.Module):
    """A convrec.Model as a recurrent torch module, batched over B streams.

    x_t = lambda (.) x_{t-1} + u_t,  y_t = d u_t + sum_m w_m Re(r_m x_{t-1,m})
    (convrec's convention, x_{-1} = 0; w = 2 for a conjugate pair stored once).

    forward(u, state=None, return_state=False): u (B, C, T) -> y (B, C, T)
        (and the final state when return_state); from zero state by default.
    step(u_t, state=None) -> (y_t, state): u_t (B, C) -> y_t (B, C); state is
        a (B, C, M) complex tensor (complex64 for float32, complex128 for
        float64), x_t in convrec's mode order, the same layout for both
        backends and convrec.Stream's (B, C, M, 2) state viewed as complex.
        States are plain tensors: clone one to fork a generation.
    initial_state(batch): the zero state.

    backend "torch": pure torch complex arithmetic, on any device the module
        is moved to (GPU included). Poles are complex128 in float64 and, in
        float32, a hi + lo pair of complex64 (as libconvrec's float executor
        keeps them), so that poles near the unit circle are not shifted by
        float rounding; states and residues are complex64. forward runs a chunked scan (exact in real
        arithmetic): within a chunk of `chunk` samples a Toeplitz product
        with the model's kernel, across chunks the state; it is
        differentiable in u.
    backend "c": libconvrec's stream executor on the CPU (CPU tensors only,
        no gradients); a module with this backend holds a C stream and is
        not to be shared between threads. step copies the state out (B C M
        complex values) at every call so that it can be returned; for the
        least overhead per sample use forward on blocks, or convrec.Stream.

    The precision is fixed at construction (dtype); .to(float32/float64)
    rebuilds for that precision, other dtypes are refused. Inputs must have
    the module's dtype and device. An unstable model (|pole| >= 1) is refused
    unless allow_unstable=True."""

    def __init__(self, model, dtype=torch.float32, backend="torch", allow_unstable=False,
                 chunk=32, check_finite=True):
        super().__init__()
        if not isinstance(model, Model):
            raise TypeError(f"Recurrence: expected a convrec.Model, not {type(model).__name__}")
        if backend not in ("torch", "c"):
            raise ValueError(f"Recurrence: backend must be 'torch' or 'c', not {backend!r}")
        _check_dtype(dtype, "Recurrence")
        if int(chunk) < 1:
            raise ValueError(f"Recurrence: chunk must be >= 1, not {chunk}")
        if not allow_unstable:
            model.check_stable()
        self.model = model
        self.backend = backend
        self.allow_unstable = bool(allow_unstable)
        self.check_finite = bool(check_finite)
        self.chunk = int(chunk)
        self.channels = model.channels
        self.modes = model.modes
        self._build(dtype, torch.device("cpu"))

    # -- coefficients -------------------------------------------------------
    def _build(self, dtype, device):
        self.dtype = dtype
        self.cdtype = _complex_of(dtype)
        kinds = torch.from_numpy(self.model.kinds.astype(np.int64))
        w = torch.where(kinds == 2, 2.0, torch.where(kinds == 1, 1.0, 0.0)).to(torch.float64)
        lam = torch.from_numpy(self.model.poles)
        rw = torch.from_numpy(self.model.residues) * w
        hi, lo = _split(lam, self.cdtype)
        # exact, on the CPU: the chunk operators are made from these
        self._lam64, self._rw64 = lam, rw
        self._used64 = (kinds != 0).to(torch.float64)
        for name, t in (("pole_hi", hi), ("pole_lo", lo), ("res_w", rw.to(self.cdtype)),
                        ("d", torch.from_numpy(self.model.d).to(dtype)),
                        ("used", (kinds != 0).to(dtype))):
            self.register_buffer(name, t.to(device), persistent=False)
        self._chunk_mats = None
        self._cstreams = {}

    def _mats(self):
        """Chunk operators for forward, made in float64 and cast once:
        toe (C, P, P) the kernel's Toeplitz block, out (C, P, M) = w r lambda^j,
        inp (C, M, P) = lambda^(P-1-i), and lambda^P as hi + lo."""
        dev = self.pole_hi.device
        if self._chunk_mats is not None and self._chunk_mats[0].device == dev:
            return self._chunk_mats
        P = self.chunk
        rw = self._rw64
        powers = self._powers(P - 1)                                    # (C, P, M) lambda^j
        out = rw[:, None, :] * powers                                   # (C, P, M)
        # (C, M, P): lambda^(P-1-i), zero for unused slots (their state stays 0)
        inp = powers.flip(1).transpose(1, 2) * self._used64[:, :, None]
        h = torch.zeros(self.channels, P, dtype=torch.float64)           # hhat[0..P-1]
        h[:, 0] = torch.from_numpy(self.model.d)
        if P > 1:
            h[:, 1:] = out[:, :P - 1, :].sum(-1).real
        idx = torch.arange(P)
        lag = idx[:, None] - idx[None, :]
        toe = torch.where(lag >= 0, h[:, lag.clamp(min=0)], torch.zeros((), dtype=torch.float64))
        lamP_hi, lamP_lo = _split(self._powers(P)[:, P], self.cdtype)
        cd = self.cdtype
        self._chunk_mats = (toe.to(dev, self.dtype), out.to(dev, cd), inp.to(dev, cd),
                            lamP_hi.to(dev), lamP_lo.to(dev))
        return self._chunk_mats

    def _powers(self, n):
        """(C, n + 1, M) complex128: lambda^j for j = 0..n, by repeated
        products (real poles stay exactly real; unused slots: 1, 0, 0, ...)."""
        lam = self._lam64
        steps = torch.cat([torch.ones_like(lam)[:, None, :], lam[:, None, :].expand(-1, n, -1)], dim=1)
        return torch.cumprod(steps, dim=1)

    def _apply(self, fn):
        # Moves between devices are fine; a change of precision rebuilds the
        # coefficients from the model (casting the complex buffers to a real
        # dtype would drop their imaginary parts).
        probe = fn(torch.zeros(1, dtype=self.dtype, device=self.pole_hi.device))
        if probe.dtype != self.dtype:
            if probe.dtype not in (torch.float32, torch.float64):
                raise TypeError(f"Recurrence runs in float32 or float64, not {probe.dtype}")
        if self.backend == "c" and probe.device.type != "cpu":
            raise RuntimeError(f"Recurrence backend 'c' runs on the CPU only (asked for {probe.device}); "
                               "use backend='torch' on other devices")
        self._build(probe.dtype, probe.device)
        return self

    def __getstate__(self):
        s = self.__dict__.copy()
        s["_cstreams"] = {}  # C streams are rebuilt on use
        s["_chunk_mats"] = None
        return s

    def extra_repr(self):
        o = self.model.orders()
        return (f"channels={self.channels}, order={int(o.min())}..{int(o.max())}, dtype={self.dtype}, "
                f"backend={self.backend!r}")

    # -- inputs ---------------------------------------------------------------
    @property
    def device(self):
        return self.pole_hi.device

    def initial_state(self, batch):
        """The zero state for `batch` streams: (batch, C, M) complex."""
        batch = int(batch)
        if batch < 1:
            raise ValueError(f"initial_state: batch must be >= 1, not {batch}")
        return torch.zeros(batch, self.channels, self.modes, dtype=self.cdtype, device=self.device)

    def _check_input(self, u, ndim, what):
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"Recurrence.{what}: expected a torch tensor, not {type(u).__name__}")
        shape = "(B, C, T)" if ndim == 3 else "(B, C)"
        if u.ndim != ndim or u.shape[1] != self.channels or u.shape[0] == 0 or (ndim == 3 and u.shape[2] == 0):
            raise ValueError(f"Recurrence.{what}: input of shape {tuple(u.shape)}; expected {shape} "
                             f"with C = {self.channels} and nothing empty")
        if u.dtype != self.dtype:
            raise TypeError(f"Recurrence.{what}: input dtype {u.dtype}; this module runs in {self.dtype} "
                            f"(convert the input, or build Recurrence(model, dtype={u.dtype}))")
        if u.device != self.device:
            raise RuntimeError(f"Recurrence.{what}: input on {u.device}, module on {self.device}"
                               + (" (backend 'c' is CPU only)" if self.backend == "c" else ""))
        if self.backend == "c" and u.requires_grad and torch.is_grad_enabled():
            raise RuntimeError(f"Recurrence.{what}: backend 'c' does not propagate gradients; "
                               "use backend='torch' or torch.no_grad()")
        if self.check_finite and self.backend == "torch" and not bool(torch.isfinite(u).all()):
            raise ValueError(f"Recurrence.{what}: input contains NaN or Inf")

    def _check_state(self, state, B, what):
        if state is None:
            return None
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"Recurrence.{what}: state must be a tensor from initial_state/step, "
                            f"not {type(state).__name__}")
        want = (B, self.channels, self.modes)
        if tuple(state.shape) != want or state.dtype != self.cdtype or state.device != self.device:
            raise ValueError(f"Recurrence.{what}: state {tuple(state.shape)} {state.dtype} on {state.device}; "
                             f"expected {want} {self.cdtype} on {self.device}")
        return state

    # -- the C backend ----------------------------------------------------------
    def _cstream(self, B, state):
        """The cached C stream for batch B, positioned at `state` (zero if None)."""
        np_dtype = np.float32 if self.dtype == torch.float32 else np.float64
        entry = self._cstreams.get(B)
        if entry is None:
            entry = [Stream(self.model, B, np_dtype, self.allow_unstable), None, None]
            self._cstreams = {B: entry}  # one batch size cached at a time
        s, last, version = entry
        if state is None:
            s.reset()
        elif not (state is last and state._version == version):
            s.state = torch.view_as_real(state.detach()).numpy()
        return entry

    def _cstate(self, entry):
        st = torch.view_as_complex(torch.from_numpy(np.ascontiguousarray(entry[0].state)))
        entry[1], entry[2] = st, st._version
        return st

    # -- running ------------------------------------------------------------------
    def step(self, u_t, state=None):
        """One sample per stream and channel: u_t (B, C) -> (y_t (B, C), new state)."""
        self._check_input(u_t, 2, "step")
        B = u_t.shape[0]
        state = self._check_state(state, B, "step")
        if self.backend == "c":
            entry = self._cstream(B, state)
            y = torch.from_numpy(entry[0].step(u_t.detach().contiguous().numpy()))
            return y, self._cstate(entry)
        x = self.initial_state(B) if state is None else state
        y = self.d * u_t + (self.res_w * x).real.sum(-1)
        drive = (u_t[..., None] * self.used).to(self.cdtype)  # unused slots stay 0
        if self.dtype == torch.float32:
            drive = drive + self.pole_lo * x
        return y, self.pole_hi * x + drive

    def forward(self, u, state=None, return_state=False):
        """The recurrence over whole sequences: u (B, C, T) -> y (B, C, T), from
        `state` (zero by default); with return_state, (y, final state)."""
        self._check_input(u, 3, "forward")
        B, C, T = u.shape
        state = self._check_state(state, B, "forward")
        if self.backend == "c":
            entry = self._cstream(B, state)
            y = torch.from_numpy(entry[0].block(u.detach().contiguous().numpy()))
            if return_state:
                return y, self._cstate(entry)
            entry[1] = None  # the stream moved on: no returned state matches it now
            return y
        toe, out, inp, lamP_hi, lamP_lo = self._mats()
        P = self.chunk
        x = (self.initial_state(B) if state is None else state).permute(1, 2, 0)  # (C, M, B)
        ys = []
        for t0 in range(0, T, P):
            p = min(P, T - t0)
            uc = u[:, :, t0:t0 + p].permute(1, 2, 0)                              # (C, p, B)
            yc = torch.bmm(toe[:, :p, :p], uc) + torch.bmm(out[:, :p, :], x).real
            ys.append(yc)
            if p == P:
                hi, lo = lamP_hi, lamP_lo
            else:
                hi, lo = (z.to(self.device) for z in _split(self._powers(p)[:, p], self.cdtype))
            drive = torch.bmm(inp[:, :, P - p:], uc.to(self.cdtype))
            if self.dtype == torch.float32:
                drive = drive + lo[:, :, None] * x
            x = hi[:, :, None] * x + drive
        y = torch.cat(ys, dim=1).permute(2, 0, 1)
        if return_state:
            return y, x.permute(2, 0, 1).contiguous()
        return y
