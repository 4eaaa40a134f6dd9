"""A small Hyena-style byte-level language model, and its distillation into
convrec recurrences for token-by-token generation.

    import torch, convrec.examples.hyena_lm as hl
    lm = hl.HyenaLM.load("examples/hyena_lm.pt")       # the committed checkpoint
    logits = lm(tokens)                                 # (B, T) int64 -> (B, T, 256), FFT convolutions
    rec = hl.distill(lm, order=16)                      # every long filter fitted by convrec.fit
    logits_rec = rec(tokens)                            # the same network, recurrences in place of convolutions
    last, state = rec.prefill(prompt)                   # (B, T) -> logits of the last position, state
    nxt, state = rec.step(token, state)                 # (B,) -> (B, 256): O(N) work per channel
    text = rec.generate(prompt, 200, temperature=0.8)   # (B, T + 200) tokens

The network, written from the Hyena paper (Poli et al. 2023, "Hyena
Hierarchy"), operator order 2, byte tokens (vocabulary 256):

    x = embed(tokens)                                       (B, T, D)
    depth x:  u = in_proj(LayerNorm(x))                     (B, T, 3D)
              u = causal depthwise conv(u, 3 taps)          short filter
              x0, x1, v = split(u)                          (B, T, D) each
              z = h * (x1 . v) + b (x1 . v)                 long causal convolution, per channel
              x = x + out_proj(x0 . z)
              x = x + MLP(LayerNorm(x))                     GELU, width 2D
    logits = head(LayerNorm(x))

The long filter h (D channels, length L = the context) is implicit: an MLP
(33 -> 64 -> 64 -> 64 -> D, sine activations with a trainable frequency per
unit) of the positional features of lag k (t = k / (L - 1), and cos, -sin of
2 pi f k / L for 16 frequencies f in linspace(1e-4, 15, 16)), times the
exponential decay window exp(-|a_c| t) with fixed rates a_c in
linspace(log(1e-2) / 1.5, log(1e-2) / 0.3, D); b is a trained skip per
channel. So each channel's impulse response is h_c + b_c delta: a kernel of
length L that convrec.fit turns into a modal recurrence (b_c goes into d).

The distilled network (RecurrentLM) shares every weight of the original and
replaces only the long convolutions by convrec.torch.Recurrence modules.
It is not limited to L tokens: the recurrences run on as long as one
generates (the convolution model has no filter taps beyond L).
"""
import copy
import hashlib
import json
import math
import os
import pickle
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import convrec
from .. import torch as crt

VOCAB = 256
CORPUS_DIR = "/usr/share/common-licenses"
CHECKPOINT_FORMAT = "convrec-hyena-lm-1"

# A short text of the kind the model was trained on, not from its corpus:
# the high-order distillation test and bench/lm_high_order.py compare
# logits on it.
SAMPLE_TEXT = (b"Permission is hereby granted to copy and distribute this program, provided that "
               b"the above copyright notice and this permission notice appear in all copies. "
               b"THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND.\n")
DEFAULTS = dict(width=128, depth=4, length=2048, emb_dim=33, filter_width=64, short=3, mlp_ratio=2)


# ---------------------------------------------------------------------------
# The convolution model


class Sin(nn.Module):
    """sin(w x) with a trainable frequency w per unit (Hyena's filter activation)."""

    def __init__(self, dim, w=1.0):
        super().__init__()
        self.freq = nn.Parameter(w * torch.ones(dim))

    def forward(self, x):
        return torch.sin(self.freq * x)


def positional_features(length, emb_dim, dtype=torch.float64):
    """(length, emb_dim): t = k / (length - 1), then cos and -sin of
    2 pi f k / length for (emb_dim - 1) / 2 frequencies f = linspace(1e-4, bands - 1, bands)."""
    bands = (emb_dim - 1) // 2
    k = torch.arange(length, dtype=torch.float64)
    t = k / max(length - 1, 1)
    f = torch.linspace(1e-4, bands - 1, bands, dtype=torch.float64)
    w = 2 * math.pi * k[:, None] * f[None, :] / length
    return torch.cat([t[:, None], torch.cos(w), -torch.sin(w)], dim=1).to(dtype)


class ImplicitFilter(nn.Module):
    """Hyena's implicit long filter for `channels` channels of length `length`."""

    def __init__(self, channels, length, emb_dim=33, width=64):
        super().__init__()
        self.channels, self.length, self.emb_dim = channels, length, emb_dim
        self.mlp = nn.Sequential(nn.Linear(emb_dim, width), Sin(width), nn.Linear(width, width), Sin(width),
                                 nn.Linear(width, width), Sin(width), nn.Linear(width, channels, bias=False))
        self.bias = nn.Parameter(torch.randn(channels))
        lo, hi = math.log(1e-2) / 1.5, math.log(1e-2) / 0.3
        self.register_buffer("decay", torch.linspace(lo, hi, channels).abs(), persistent=False)

    def kernels(self, L=None):
        """The filter taps (channels, L) for lags 0..L-1 (L <= length), in the
        module's dtype; the skip b is separate (self.bias)."""
        L = self.length if L is None else int(L)
        if not 1 <= L <= self.length:
            raise ValueError(f"ImplicitFilter.kernels: L must be in 1..{self.length}, not {L}")
        dtype = self.bias.dtype
        z = positional_features(self.length, self.emb_dim, dtype)[:L].to(self.bias.device)
        t = z[:, 0]
        h = self.mlp(z).transpose(0, 1)                          # (channels, L)
        return h * torch.exp(-t[None, :] * self.decay[:, None])

    def impulse_responses(self, L=None):
        """h + b delta as a float64 numpy array (channels, L): what convrec fits."""
        with torch.no_grad():
            h = self.kernels(L).detach().to("cpu", torch.float64).numpy().copy()
        h[:, 0] += self.bias.detach().to("cpu", torch.float64).numpy()
        return h


def fft_causal_conv(u, h):
    """Causal convolution of u (B, D, T) with h (D, K), K >= T taps used up to
    T, by FFT of size 2T: y[..., t] = sum_{k <= t} h[:, k] u[..., t - k]."""
    T = u.shape[-1]
    n = 2 * T
    Uf = torch.fft.rfft(u, n=n)
    Hf = torch.fft.rfft(h[:, :T], n=n)
    return torch.fft.irfft(Uf * Hf, n=n)[..., :T]


class HyenaBlock(nn.Module):
    def __init__(self, width, length, emb_dim, filter_width, short, mlp_ratio):
        super().__init__()
        D = width
        self.width, self.short_len = D, short
        self.norm1 = nn.LayerNorm(D)
        self.in_proj = nn.Linear(D, 3 * D)
        self.short = nn.Conv1d(3 * D, 3 * D, short, groups=3 * D, padding=short - 1)
        self.filter = ImplicitFilter(D, length, emb_dim, filter_width)
        self.out_proj = nn.Linear(D, D)
        self.norm2 = nn.LayerNorm(D)
        self.mlp = nn.Sequential(nn.Linear(D, mlp_ratio * D), nn.GELU(), nn.Linear(mlp_ratio * D, D))

    def forward(self, x, longconv):
        """x (B, T, D) -> (x, history, extra). longconv(v (B, D, T)) returns
        the long convolution h * v + b v (B, D, T) and anything the caller
        keeps (extra: a final state, a cache); history is the short filter's
        last short - 1 inputs (B, 3D, short - 1), zero-padded, which step
        continues from."""
        T = x.shape[1]
        pre = self.in_proj(self.norm1(x)).transpose(1, 2)         # (B, 3D, T)
        u = self.short(pre)[..., :T]
        x0, x1, v = u.split(self.width, dim=1)
        z, extra = longconv(x1 * v)
        x = x + self.out_proj((x0 * z).transpose(1, 2))
        x = x + self.mlp(self.norm2(x))
        keep = self.short_len - 1
        hist = pre[..., T - keep:].clone() if T >= keep else F.pad(pre, (keep - T, 0))
        return x, hist, extra

    def step(self, x, hist, longconv_step):
        """One position: x (B, D), hist as forward returns it ->
        (x, history, extra). longconv_step(w (B, D)) returns this position's
        long convolution output (B, D) and what the caller keeps."""
        u = self.in_proj(self.norm1(x))                           # (B, 3D)
        win = torch.cat([hist, u[:, :, None]], dim=2)              # (B, 3D, short)
        uc = (win * self.short.weight[:, 0, :]).sum(-1) + self.short.bias
        x0, x1, v = uc.split(self.width, dim=1)
        z, extra = longconv_step(x1 * v)
        x = x + self.out_proj(x0 * z)
        return x + self.mlp(self.norm2(x)), win[:, :, 1:], extra

    def conv(self, v, kernels=None):
        """The trained long convolution by FFT: h * v + b v."""
        h = self.filter.kernels(v.shape[-1]) if kernels is None else kernels
        return fft_causal_conv(v, h) + self.filter.bias[:, None] * v


class HyenaLM(nn.Module):
    """The convolution model (as trained)."""

    def __init__(self, width=128, depth=4, length=2048, emb_dim=33, filter_width=64, short=3, mlp_ratio=2):
        super().__init__()
        self.config = dict(width=width, depth=depth, length=length, emb_dim=emb_dim,
                           filter_width=filter_width, short=short, mlp_ratio=mlp_ratio)
        self.length = length
        self.embed = nn.Embedding(VOCAB, width)
        self.blocks = nn.ModuleList(HyenaBlock(width, length, emb_dim, filter_width, short, mlp_ratio)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VOCAB)

    @property
    def dtype(self):
        return self.head.weight.dtype

    def _check_tokens(self, tokens, limit=True):
        if not isinstance(tokens, torch.Tensor) or tokens.ndim != 2 or tokens.dtype != torch.int64:
            raise ValueError("tokens must be an int64 tensor of shape (B, T)")
        if tokens.numel() == 0:
            raise ValueError("tokens must not be empty")
        if limit and tokens.shape[1] > self.length:
            raise ValueError(f"the convolution model's context is {self.length} tokens, not {tokens.shape[1]}")
        if int(tokens.min()) < 0 or int(tokens.max()) >= VOCAB:
            raise ValueError(f"tokens must be bytes (0..{VOCAB - 1})")

    def kernels(self, L=None):
        """Every block's filter taps (a list of (D, L) tensors), computed once
        for repeated forward calls (as a deployed model would keep them)."""
        return [b.filter.kernels(L) for b in self.blocks]

    def forward(self, tokens, kernels=None):
        """tokens (B, T), T <= length -> logits (B, T, 256) in the module's dtype."""
        self._check_tokens(tokens)
        x = self.embed(tokens)
        for i, b in enumerate(self.blocks):
            k = None if kernels is None else kernels[i]
            x, _, _ = b(x, lambda v, b=b, k=k: (b.conv(v, k), None))
        return self.head(self.norm(x))

    # -- checkpoints ------------------------------------------------------------
    def save(self, path, **info):
        """A torch.save file of plain tensors and strings: {"format",
        "config" and "info" (JSON text), "state_dict" (float32)}, loadable
        with weights_only (torch 1.13's safe unpickler takes no floats, so
        the settings are text). Written to a temporary name and renamed."""
        sd = {k: v.detach().to("cpu", torch.float32).clone() for k, v in self.state_dict().items()}
        tmp = f"{path}.tmp{os.getpid()}"
        torch.save({"format": CHECKPOINT_FORMAT, "config": json.dumps(self.config),
                    "info": json.dumps(info), "state_dict": sd}, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path, dtype=torch.float32):
        """The model of a checkpoint written by save (weights_only: no code
        runs), in float32 or float64, in eval mode; .info holds the training record."""
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as e:
            raise ValueError(f"{path}: not a hyena_lm checkpoint ({e})") from None
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: not a hyena_lm checkpoint (no format {CHECKPOINT_FORMAT!r})")
        try:
            config, info = json.loads(ck["config"]), json.loads(ck["info"])
            lm = cls(**config)
            lm.load_state_dict(ck["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"{path}: a damaged hyena_lm checkpoint ({e})") from None
        lm.info = info
        return lm.to(dtype).eval()


# ---------------------------------------------------------------------------
# The distilled model


class RecurrentLM(nn.Module):
    """A HyenaLM with every long convolution replaced by a recurrence (one
    convrec.Model per block, D channels, impulse responses h + b delta).

    forward(tokens): all positions at once, (B, T) -> (B, T, 256), any T
        (the recurrences' chunked scan, exact in real arithmetic).
    prefill(tokens) -> (logits of the last position (B, 256), state);
    step(token (B,), state) -> (logits (B, 256), state): one token, O(N) per
        channel and O(D^2) for the projections, independent of the position.
    A state is a list of per-block (short-filter history (B, 3D, short - 1),
    recurrence state (B, D, M) complex); plain tensors, clone to fork."""

    def __init__(self, lm, models, dtype=torch.float32):
        super().__init__()
        if len(models) != len(lm.blocks):
            raise ValueError(f"RecurrentLM: {len(models)} models for {len(lm.blocks)} blocks")
        for i, (b, m) in enumerate(zip(lm.blocks, models)):
            if m.channels != b.width:
                raise ValueError(f"RecurrentLM: block {i}: model has {m.channels} channels, block {b.width}")
        # the weights are shared when the precision is the same, else copied
        self.lm = lm if lm.dtype == dtype else copy.deepcopy(lm).to(dtype)
        self.models = list(models)
        self.recs = nn.ModuleList(crt.Recurrence(m, dtype=dtype) for m in models)
        self.dtype = dtype

    def forward(self, tokens, return_state=False):
        """tokens (B, T), any T -> logits (B, T, 256) from the zero state; with
        return_state, (logits, the state after the last position)."""
        lm = self.lm
        lm._check_tokens(tokens, limit=False)
        x = lm.embed(tokens)
        state = []
        for b, r in zip(lm.blocks, self.recs):
            x, hist, xs = b(x, lambda v, r=r: r(v, return_state=True))
            state.append((hist, xs))
        logits = lm.head(lm.norm(x))
        return (logits, state) if return_state else logits

    def prefill(self, tokens, method="auto"):
        """Run the prompt (B, T) through the network: the logits of its last
        position (B, 256) and the state after it. method "recurrence": the
        recurrences' chunked scan (forward); "fft": each block's long
        convolution by FFT with its model's own impulse response (the same
        map, exact in real arithmetic) and the final recurrence state in
        closed form, x = sum_t lambda^(T-1-t) v_t. "auto" is the scan:
        bench/lm_distill.py measured it faster at every size it tries (up
        to 2048 tokens, batch 16), since the closed-form state costs
        B C T M complex products."""
        if method not in ("auto", "fft", "recurrence"):
            raise ValueError(f"prefill: method must be 'auto', 'fft' or 'recurrence', not {method!r}")
        if method in ("auto", "recurrence"):
            logits, state = self.forward(tokens, return_state=True)
            return logits[:, -1], state
        lm = self.lm
        lm._check_tokens(tokens, limit=False)
        T = tokens.shape[1]
        x = lm.embed(tokens)
        state = []
        for b, r, m in zip(lm.blocks, self.recs, self.models):
            k = torch.from_numpy(m.kernel(T)).to(x.dtype)
            x, hist, xs = b(x, lambda v, r=r, k=k: (fft_causal_conv(v, k), _closed_form_state(r, v)))
            state.append((hist, xs))
        return lm.head(lm.norm(x))[:, -1], state

    def initial_state(self, batch):
        D3 = 3 * self.lm.config["width"]
        return [(torch.zeros(batch, D3, b.short_len - 1, dtype=self.dtype), r.initial_state(batch))
                for b, r in zip(self.lm.blocks, self.recs)]

    def step(self, token, state):
        """token (B,) int64 -> (logits (B, 256), new state)."""
        lm = self.lm
        x = lm.embed(token)                                           # (B, D)
        new = []
        for b, r, (hist, rs) in zip(lm.blocks, self.recs, state):
            x, hist, rs = b.step(x, hist, lambda w, r=r, rs=rs: r.step(w, rs))
            new.append((hist, rs))
        return lm.head(lm.norm(x)), new

    @torch.no_grad()
    def generate(self, prompt, n, temperature=1.0, generator=None):
        """Sample n tokens after the prompt (B, T): (B, T + n) tokens. temperature
        0 takes the most likely token."""
        logits, state = self.prefill(prompt)
        out = [prompt]
        for _ in range(int(n)):
            tok = sample(logits, temperature, generator)
            out.append(tok[:, None])
            logits, state = self.step(tok, state)
        return torch.cat(out, dim=1)


def _closed_form_state(rec, v, seg=512):
    """The state of Recurrence rec after the input v (B, C, T) from zero:
    x = sum_t lambda^(T-1-t) v_t per mode, in float64 by segments of `seg`
    samples (powers lambda^j, j < seg, as exp(j log lambda)), cast to the
    state's dtype; unused mode slots stay 0."""
    lam = rec._lam64                                              # (C, M) complex128
    B, C, T = v.shape
    logl = torch.log(torch.where(lam == 0, torch.ones_like(lam), lam))
    x = torch.zeros(B, C, lam.shape[1], dtype=torch.complex128)
    v64 = v.detach().to(torch.float64)
    for t0 in range(0, T, seg):
        s = min(seg, T - t0)
        j = torch.arange(s - 1, -1, -1, dtype=torch.float64)      # s-1-i for sample i of the segment
        pw = torch.exp(logl[:, None, :] * j[None, :, None])       # (C, s, M) lambda^(s-1-i)
        pw = torch.where(lam[:, None, :] == 0, (j == 0).to(pw.dtype)[None, :, None], pw)
        x = x * torch.exp(logl * s)[None] * (lam != 0)[None] + torch.einsum(
            "bcs,csm->bcm", v64[..., t0:t0 + s].to(torch.complex128), pw)
    return (x * rec._used64[None]).to(rec.cdtype)


class CachedConvLM:
    """Token-by-token generation with the convolution model itself, the
    fastest way without a recurrence: every block keeps the whole history of
    its long filter's input, and each new token's convolution output is one
    dot product per channel with the filter taps, O(t) at position t (the
    model's filters end at L, so at most L tokens). Equal to HyenaLM's
    logits at every position; a baseline for RecurrentLM (O(N) per token)."""

    def __init__(self, lm):
        self.lm = lm
        with torch.no_grad():
            self.taps = [b.filter.kernels() for b in lm.blocks]     # (D, L)

    @torch.no_grad()
    def prefill(self, tokens):
        """tokens (B, T) -> logits of the last position, state (the prompt by
        FFT convolution; the state keeps every block's filter input)."""
        lm = self.lm
        lm._check_tokens(tokens)
        B, T = tokens.shape
        x = lm.embed(tokens)
        state = []
        for b, k in zip(lm.blocks, self.taps):
            def longconv(v, b=b, k=k):
                cache = v.new_zeros(B, b.width, lm.length)         # every input of the filter so far
                cache[..., :T] = v
                return b.conv(v, k), cache
            x, hist, cache = b(x, longconv)
            state.append((hist, cache))
        return lm.head(lm.norm(x))[:, -1], (T, state)

    @torch.no_grad()
    def step(self, token, state):
        lm = self.lm
        t, blocks = state
        if t >= lm.length:
            raise ValueError(f"the convolution model's context is {lm.length} tokens")
        x = lm.embed(token)
        new = []
        for b, k, (hist, cache) in zip(lm.blocks, self.taps, blocks):
            def longconv_step(w, b=b, k=k, cache=cache):
                cache[:, :, t] = w
                # sum_{j <= t} h[j] w[t - j]: the inputs reversed against the first t + 1 taps
                return (cache[:, :, :t + 1].flip(-1) * k[:, :t + 1]).sum(-1) + b.filter.bias * w, cache
            x, hist, cache = b.step(x, hist, longconv_step)
            new.append((hist, cache))
        return lm.head(lm.norm(x)), (t + 1, new)


def sample(logits, temperature=1.0, generator=None):
    """One token per row of logits (B, 256): argmax for temperature 0."""
    if temperature == 0:
        return logits.argmax(-1)
    p = torch.softmax(logits.to(torch.float64) / temperature, dim=-1)
    return torch.multinomial(p, 1, generator=generator)[:, 0]


def filter_bank(lm, L=None):
    """Every block's impulse responses h + b delta, float64 numpy (D, L) each."""
    return [b.filter.impulse_responses(L) for b in lm.blocks]


def distill(lm, order=None, tol=None, max_order=None, horizon="window", margin=None, dtype=torch.float32,
            threads=0):
    """Fit every long filter of lm (length L = lm.length) with convrec.fit
    (order N, or tol per channel) and return the RecurrentLM; .models holds
    the convrec.Model of each block (records: errors, sigma_{N+1}, orders)."""
    models = [convrec.fit(h, order=order, tol=tol, max_order=max_order, horizon=horizon, margin=margin,
                          threads=threads)
              for h in filter_bank(lm)]
    return RecurrentLM(lm, models, dtype)


# ---------------------------------------------------------------------------
# Data and training


def corpus(path=CORPUS_DIR, heldout=0.1):
    """The license texts of a Debian machine as bytes: every regular file of
    `path` once (symlinks resolved, sorted by name), each split into its
    first (1 - heldout) for training and its last `heldout` for evaluation.
    Returns (train, held-out) uint8 tensors and the sha256 of the files read."""
    names = sorted(os.listdir(path))
    seen, tr, te = set(), [], []
    sha = hashlib.sha256()
    for name in names:
        p = os.path.realpath(os.path.join(path, name))
        if p in seen or not os.path.isfile(p):
            continue
        seen.add(p)
        with open(p, "rb") as f:
            data = f.read()
        sha.update(name.encode() + b"\0" + data)
        cut = int(len(data) * (1 - heldout))
        tr.append(data[:cut] + b"\n\n")
        te.append(data[cut:] + b"\n\n")
    if not tr:
        raise FileNotFoundError(f"no text files in {path}")
    as_t = lambda chunks: torch.frombuffer(bytearray(b"".join(chunks)), dtype=torch.uint8).to(torch.int64)
    return as_t(tr), as_t(te), sha.hexdigest()


def windows(text, length):
    """Consecutive non-overlapping windows of `length` + 1 tokens (the last,
    shorter one dropped): (inputs, targets) (W, length) each."""
    W = (text.numel() - 1) // length
    if W < 1:
        raise ValueError(f"text of {text.numel()} tokens is shorter than one window of {length + 1}")
    x = text[:W * length + 1]
    return x[:-1].view(W, length), x[1:].view(W, length)


@torch.no_grad()
def nll(model, text, length, batch=4):
    """Mean negative log-likelihood per token (nats) of `model` (tokens ->
    logits) on text, in windows of `length` tokens from zero state."""
    xs, ys = windows(text, length)
    tot, n = 0.0, 0
    for i in range(0, xs.shape[0], batch):
        logits = model(xs[i:i + batch])
        tot += float(F.cross_entropy(logits.reshape(-1, VOCAB).to(torch.float64), ys[i:i + batch].reshape(-1),
                                     reduction="sum"))
        n += ys[i:i + batch].numel()
    return tot / n


def train(steps=600, batch=8, length=2048, lr=2e-3, seed=0, log=print, **config):
    """Train a HyenaLM from scratch on corpus() (AdamW, linear warm-up then
    cosine decay, random windows of `length` tokens). Returns the model (eval
    mode) and a dict of what happened (held-out loss every 100 steps, time)."""
    torch.manual_seed(seed)
    train_text, held, sha = corpus()
    cfg = dict(DEFAULTS, **config)
    cfg["length"] = length
    lm = HyenaLM(**cfg)
    decay, no_decay = [], []
    for name, p in lm.named_parameters():
        (decay if p.ndim >= 2 and "filter" not in name else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98))
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    g = torch.Generator().manual_seed(seed)
    history, t0 = [], time.perf_counter()
    for s in range(steps):
        lm.train()
        starts = torch.randint(0, train_text.numel() - length - 1, (batch,), generator=g)
        idx = starts[:, None] + torch.arange(length + 1)
        chunk = train_text[idx]
        logits = lm(chunk[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        sched.step()
        if (s + 1) % 100 == 0 or s + 1 == steps:
            lm.eval()
            h = nll(lm, held, length)
            history.append({"step": s + 1, "train_loss": float(loss), "heldout_nll": h,
                            "seconds": time.perf_counter() - t0})
            log(f"step {s + 1:5d}  train loss {float(loss):.4f}  held-out nll {h:.4f} "
                f"(ppl {math.exp(h):.3f})  {time.perf_counter() - t0:.0f} s")
    lm.eval()
    info = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "corpus": CORPUS_DIR, "corpus_sha256": sha,
            "train_tokens": int(train_text.numel()), "heldout_tokens": int(held.numel()),
            "seconds": time.perf_counter() - t0, "history": history, "torch": torch.__version__}
    return lm, info
