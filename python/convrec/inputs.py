"""Inputs of `convrec study` and `convrec report`: kernel files, channel
selections, order lists, and files written atomically.

Every problem with what the user gave is a UserError whose message names the
file or the option and the problem; the command prints it and exits 1.
"""
import os
import re
import tempfile

import numpy as np


class UserError(Exception):
    """Bad input (file, option, output folder): a message for the user."""


# ---------------------------------------------------------------- kernels
def load_kernels(path):
    """Kernels from a file `convrec fit` accepts, as ((C, L) float64, rate).

    .npy: float32 or float64, shape (L,) or (C, L) (as `convrec fit`).
    .wav: PCM 8/16/24/32-bit or float, one channel per kernel; PCM is
    scaled to [-1, 1) (int16 / 32768, ...). rate is the file's sample rate
    in Hz for .wav, None for .npy."""
    if not os.path.exists(path):
        raise UserError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a folder, not a kernel file")
    low = path.lower()
    if low.endswith(".wav"):
        h, rate = _load_wav(path)
    else:
        h, rate = _load_npy(path), None
    if h.ndim == 1:
        h = h[None, :]
    if h.ndim != 2:
        raise UserError(f"{path}: kernels must have shape (L,) or (C, L), not {h.shape}")
    if h.shape[0] == 0 or h.shape[1] == 0:
        raise UserError(f"{path}: the kernel bank is empty (shape {h.shape})")
    if not np.all(np.isfinite(h)):
        c, k = np.argwhere(~np.isfinite(h))[0]
        raise UserError(f"{path}: kernel value [{c}, {k}] is not finite ({h[c, k]})")
    return np.ascontiguousarray(h, dtype=np.float64), rate


def _load_npy(path):
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy file ({e})") from None
    if not isinstance(a, np.ndarray):
        raise UserError(f"{path}: not a single .npy array")
    if a.dtype not in (np.float32, np.float64):
        raise UserError(f"{path}: kernels must be float32 or float64, not {a.dtype}")
    return a


def _load_wav(path):
    try:
        from scipy.io import wavfile
    except ImportError:
        wavfile = None
    if wavfile is not None:
        try:
            rate, a = wavfile.read(path)
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: not a readable .wav file ({e})") from None
    else:  # the standard library reads PCM only
        import wave
        try:
            with wave.open(path) as w:
                rate, width, nch = w.getframerate(), w.getsampwidth(), w.getnchannels()
                raw = w.readframes(w.getnframes())
        except (OSError, EOFError, wave.Error) as e:
            raise UserError(f"{path}: not a readable PCM .wav file ({e})") from None
        if width == 3:
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
            a = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8  # left-aligned int32
        else:
            a = np.frombuffer(raw, {1: np.uint8, 2: "<i2", 4: "<i4"}[width])
        a = a.reshape(-1, nch)
    if a.dtype == np.uint8:
        h = (a.astype(np.float64) - 128.0) / 128.0
    elif a.dtype.kind == "i":
        h = a.astype(np.float64) / float(2 ** (8 * a.dtype.itemsize - 1))
    elif a.dtype.kind == "f":
        h = a.astype(np.float64)
    else:
        raise UserError(f"{path}: unsupported .wav sample type {a.dtype}")
    h = h.T if h.ndim == 2 else h  # (T, channels) -> channels first
    return h, float(rate)


# ---------------------------------------------------------------- selections
CHANNELS_GRAMMAR = """\
A channel selection is a comma-separated list of items, channels counted
from 0:
  N         channel N
  A..B      channels A to B, both included ("0..15")
  A..B:S    every S-th channel from A up to B ("0..511:16")
  [A]:[B][:S]
            a Python slice, B excluded ("::16" every 16th channel, "8:" from
            channel 8 on)
  all       every channel
  worst, median, best
            (report, with errors known) the channel of the largest, median
            and smallest relative l2 error of the model's own objective
The order of first mention is kept, repeats are dropped; a selection that
selects no channel, or names a channel that does not exist, is an error."""


def parse_channels(spec, C, errors=None, what="--channels"):
    """Channel indices selected by spec (see CHANNELS_GRAMMAR) among C.
    errors: per-channel errors for worst/median/best (None: not allowed).
    Returns (indices, labels): labels maps index -> 'worst' etc."""
    if spec is None or not str(spec).strip():
        raise UserError(f"{what}: the selection is empty")
    out, labels = [], {}

    def add(i, label=None):
        if i < 0 or i >= C:
            raise UserError(f"{what}: channel {i} does not exist (there are {C}, 0..{C - 1})")
        if i not in out:
            out.append(i)
        if label and i not in labels:
            labels[i] = label

    for item in str(spec).split(","):
        it = item.strip()
        if not it:
            raise UserError(f"{what}: empty item in '{spec}'")
        m_range = re.fullmatch(r"(\d+)\.\.(\d+)(?::(\d+))?", it)
        m_slice = re.fullmatch(r"(-?\d*):(-?\d*)(?::(-?\d*))?", it)
        if re.fullmatch(r"\d+", it):
            add(int(it))
        elif m_range:
            a, b = int(m_range.group(1)), int(m_range.group(2))
            s = int(m_range.group(3)) if m_range.group(3) else 1
            if s == 0:
                raise UserError(f"{what}: step 0 in '{it}'")
            if a > b:
                raise UserError(f"{what}: '{it}' runs backwards ({a} > {b})")
            if b >= C:
                raise UserError(f"{what}: channel {b} does not exist (there are {C}, 0..{C - 1})")
            for i in range(a, b + 1, s):
                add(i)
        elif m_slice:
            parts = [int(g) if g not in (None, "") else None for g in m_slice.groups()]
            if parts[2] == 0:
                raise UserError(f"{what}: step 0 in '{it}'")
            for i in range(C)[slice(*parts)]:
                add(i)
        elif it == "all":
            for i in range(C):
                add(i)
        elif it in ("worst", "median", "best"):
            if errors is None:
                raise UserError(f"{what}: '{it}' needs the channels' errors (a report of a model)")
            e = np.asarray(errors, dtype=float)
            ok = np.flatnonzero(np.isfinite(e))
            if ok.size == 0:
                raise UserError(f"{what}: '{it}': no channel has a finite error")
            srt = ok[np.argsort(e[ok], kind="stable")]
            i = {"worst": srt[-1], "best": srt[0], "median": srt[(srt.size - 1) // 2]}[it]
            add(int(i), it)
        else:
            raise UserError(f"{what}: cannot read '{it}' (see --help for the grammar)")
    if not out:
        raise UserError(f"{what}: '{spec}' selects no channel (of {C})")
    return out, labels


def parse_orders(spec, what="--orders"):
    """Orders from "2,4,8", "2..64" (every order from 2 to 64) or "2..64:2"
    (every second), or a mix: sorted, unique, all >= 1."""
    out = set()
    for item in str(spec).split(","):
        it = item.strip()
        m = re.fullmatch(r"(\d+)\.\.(\d+)(?::(\d+))?", it)
        if re.fullmatch(r"\d+", it):
            out.add(int(it))
        elif m:
            a, b = int(m.group(1)), int(m.group(2))
            s = int(m.group(3)) if m.group(3) else 1
            if s == 0 or a > b:
                raise UserError(f"{what}: '{it}' is not a range A..B[:S] with A <= B and S >= 1")
            out.update(range(a, b + 1, s))
        else:
            raise UserError(f"{what}: cannot read '{it}': give orders as 2,4,8 or 2..64 or 2..64:2")
    if not out:
        raise UserError(f"{what}: no order given")
    if min(out) < 1:
        raise UserError(f"{what}: orders must be positive")
    if max(out) > 100000:
        raise UserError(f"{what}: order {max(out)} is absurd")
    return sorted(out)


def parse_list(spec, allowed, what, aliases=None):
    """A comma-separated list of words from allowed (order kept, unique)."""
    out = []
    for item in str(spec).split(","):
        it = item.strip()
        words = (aliases or {}).get(it, [it])
        for w in words:
            if w not in allowed:
                raise UserError(f"{what}: '{it}' is not one of {', '.join(allowed)}")
            if w not in out:
                out.append(w)
    if not out:
        raise UserError(f"{what}: nothing selected")
    return out


# ---------------------------------------------------------------- output
def prepare_outdir(path, what="-o"):
    """Create the output folder if needed and check that files can be made
    in it, before any long work starts."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{what} {path}: exists and is not a folder")
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".convrec-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"{what} {path}: cannot write in this folder ({e.strerror or e})") from None
    return path


def write_atomic(path, data):
    """Write bytes or text to path through a temporary file in the same
    folder and a rename: readers see the old file or the whole new one."""
    d = os.path.dirname(os.path.abspath(path))
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def check_outputs(outdir, names, inputs, what="-o"):
    """Refuse to write outdir/NAME when it is one of the inputs (same file:
    links included), as every convrec command does."""
    for n in names:
        out = os.path.join(outdir, n)
        for i in inputs:
            try:
                if i and os.path.exists(out) and os.path.samefile(out, i):
                    raise UserError(f"{what} {outdir}: writing {n} would destroy the input {i}")
            except OSError:
                continue
