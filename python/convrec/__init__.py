"""convrec: long convolution kernels to small stable state-space recurrences.

A thin numpy-in, numpy-out layer over libconvrec (ctypes, in the manner of
python-soundfile). Kernels are (C, L) arrays (or (L,)), signals (C, T) or
(B, C, T), float32 or float64; torch tensors are accepted too (CPU; tensors
on other devices are copied to the CPU with a warning) and give tensors back.
Errors raise ConvrecError with the library's status text and detail.
ctypes releases the GIL during every library call.

    import convrec
    m = convrec.fit(kernels, order=16)           # a Model
    y = m.filter(u)                              # recurrence, zero latency
    k = m.kernel(L)                              # (C, L) impulse responses
    small = m.reduce(order=8)                    # a smaller Model of m's kernel
    m.save("model.safetensors"); convrec.Model.load("model.safetensors")

The PyTorch bridge (S4D import, an nn.Module recurrence) is convrec.torch.
"""
import contextlib
import ctypes
import os
import threading
import warnings

import numpy as np

from . import _clib

__all__ = ["ConvrecError", "Model", "Stream", "conv", "hsv", "fit", "library_path",
           "library_version", "__version__"]

__version__ = _clib.VERSION
_lib = _clib.lib
_c_size = ctypes.c_size_t
_p_double = ctypes.POINTER(ctypes.c_double)
_p_float = ctypes.POINTER(ctypes.c_float)
_FitRecord, _ModelView, _FitOptions = _clib.FitRecord, _clib.ModelView, _clib.FitOptions


def library_path():
    """The libconvrec that was loaded (a path, or a name the dynamic linker
    resolved); see convrec._clib for the search order."""
    return _clib.path


# libconvrec calls LAPACK inside its own OpenMP threads and needs it
# single-threaded there (convrec.h, "BLAS"); it leaves the BLAS thread count
# to the caller. With Debian's pthreads OpenBLAS a fit from Python would
# otherwise start BLAS threads in every convrec thread: measured 10x slower
# (bench/lm_high_order.py, the 512 filters of the Hyena LM at N = 48 on 2
# cores: 58.6 s, against 6.6 s with OPENBLAS_NUM_THREADS=1). So every fit
# runs with the count at 1 and restores it after; overlapping fits (Python
# threads) share one save.
_blas_get = getattr(_lib, "openblas_get_num_threads", None)
_blas_set = getattr(_lib, "openblas_set_num_threads", None)
if _blas_get is not None and _blas_set is not None:
    _blas_get.restype, _blas_get.argtypes = ctypes.c_int, []
    _blas_set.restype, _blas_set.argtypes = None, [ctypes.c_int]
_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved = 1


@contextlib.contextmanager
def _single_threaded_blas():
    global _blas_users, _blas_saved
    if _blas_get is None or _blas_set is None:  # not OpenBLAS: nothing to do
        yield
        return
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = int(_blas_get())
            _blas_set(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_set(_blas_saved)


class ConvrecError(RuntimeError):
    """A libconvrec call failed: .status is the cr_status code, .text its
    cr_strerror text and .detail the cr_error_detail of the failure."""

    def __init__(self, status, what=""):
        self.status = status
        self.text = _lib.cr_strerror(status).decode()
        self.detail = _lib.cr_error_detail().decode()
        msg = f"{what}: {self.text}" if what else self.text
        if self.detail:
            msg += f" ({self.detail})"
        super().__init__(msg)


def _sig(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_vp = ctypes.c_void_p
_sig("cr_strerror", ctypes.c_char_p, ctypes.c_int)
_sig("cr_error_detail", ctypes.c_char_p)
_sig("cr_version", ctypes.c_char_p)
_sig("cr_conv_d", ctypes.c_int, _p_double, _c_size, _c_size, _p_double, _c_size, _c_size, _p_double, ctypes.c_int)
_sig("cr_conv_f", ctypes.c_int, _p_float, _c_size, _c_size, _p_float, _c_size, _c_size, _p_float, ctypes.c_int)
_sig("cr_hsv", ctypes.c_int, _p_double, _c_size, ctypes.c_int, _c_size, _p_double,
     ctypes.POINTER(_c_size), _p_double)
_sig("cr_fit_options_default", None, ctypes.POINTER(_FitOptions))
_sig("cr_fit", ctypes.c_int, _p_double, _c_size, _c_size, ctypes.POINTER(_FitOptions), ctypes.POINTER(_vp))
_sig("cr_model_destroy", None, _vp)
_sig("cr_model_rate", ctypes.c_double, _vp)
_sig("cr_third_octave_bands", _c_size, ctypes.c_double, _p_double, _p_double, _p_double, _c_size)
_sig("cr_model_band_errors", ctypes.c_int, _vp, _c_size, _p_double, _c_size, ctypes.c_double,
     ctypes.POINTER(_clib.BandErrors), _p_double, _c_size)
_sig("cr_model_copy", ctypes.c_int, _vp, ctypes.POINTER(_vp))
_sig("cr_model_check_stable", ctypes.c_int, _vp, ctypes.c_double)
_sig("cr_model_create", ctypes.c_int, ctypes.POINTER(_vp), _c_size, _c_size)
_sig("cr_model_set_channel", ctypes.c_int, _vp, _c_size, _c_size, ctypes.POINTER(ctypes.c_ubyte),
     _p_double, _p_double, _p_double, _p_double, ctypes.c_double)
_sig("cr_model_get_view", ctypes.c_int, _vp, ctypes.POINTER(_ModelView))
_sig("cr_model_order", _c_size, _vp, _c_size)
_sig("cr_model_spectral_radius", ctypes.c_double, _vp, _c_size)
_sig("cr_model_kernel", ctypes.c_int, _vp, _c_size, _p_double)
_sig("cr_model_errors", ctypes.c_int, _vp, _c_size, _p_double, _c_size, ctypes.POINTER(_FitRecord))
_sig("cr_model_set_record", None, _vp, _c_size, ctypes.POINTER(_FitRecord))
_sig("cr_model_set_info", None, _vp, ctypes.c_int, ctypes.c_int)
_sig("cr_model_save", ctypes.c_int, _vp, ctypes.c_char_p)
_sig("cr_model_load", ctypes.c_int, ctypes.POINTER(_vp), ctypes.c_char_p)

for _x, _R in (("d", _p_double), ("f", _p_float)):
    _sig(f"cr_stream_{_x}_create", ctypes.c_int, ctypes.POINTER(_vp), _vp, _c_size, ctypes.c_uint)
    _sig(f"cr_stream_{_x}_destroy", None, _vp)
    _sig(f"cr_stream_{_x}_reset", ctypes.c_int, _vp)
    _sig(f"cr_stream_{_x}_state_len", _c_size, _vp)
    _sig(f"cr_stream_{_x}_get_state", ctypes.c_int, _vp, _R, _c_size)
    _sig(f"cr_stream_{_x}_set_state", ctypes.c_int, _vp, _R, _c_size)
    _sig(f"cr_stream_{_x}_step", ctypes.c_int, _vp, _R, _R)
    _sig(f"cr_stream_{_x}_block", ctypes.c_int, _vp, _R, _c_size, _R)
    _sig(f"cr_stream_{_x}_prefill", ctypes.c_int, _vp, _R, _c_size, _R, ctypes.c_int)


def library_version():
    """cr_version() of the loaded library (normally equal to __version__)."""
    return _lib.cr_version().decode()


if library_version() != __version__:
    warnings.warn(f"convrec: package {__version__} loaded libconvrec {library_version()} from "
                  f"{library_path()} (layouts checked and equal, but reinstall to match)",
                  RuntimeWarning, stacklevel=2)


def _is_tensor(x):
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def _from_user(x, what):
    """A numpy view of x (array-like or torch tensor), and a function that turns
    a numpy result back into the caller's kind (a tensor on x's device)."""
    if _is_tensor(x):
        import torch
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{what}: torch tensor of dtype {x.dtype}; expected torch.float32 or torch.float64")
        device = x.device
        t = x.detach()
        if device.type != "cpu":
            warnings.warn(f"{what}: copying a tensor from {device} to the CPU (libconvrec runs on the CPU)",
                          RuntimeWarning, stacklevel=3)
            t = t.cpu()
        return t.numpy(), (lambda y: torch.from_numpy(y).to(device))
    a = np.asarray(x)
    if a.dtype.kind not in "fiu" or a.dtype == np.float16:
        raise TypeError(f"{what}: array of dtype {a.dtype}; expected real float32 or float64 values")
    return a, (lambda y: y)

_METHODS = {"auto": 0, "bt": 1, "hna": 2, "pencil": 3}
_HORIZONS = {"window": 0, "infinite": 1}


def _check(status, what=""):
    if status != 0:
        raise ConvrecError(status, what)


def _ptr(a):
    return a.ctypes.data_as(_p_double if a.dtype == np.float64 else _p_float)


def _choice(table, value, what):
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ValueError(f"{what} must be one of {', '.join(map(repr, table))}, not {value!r}") from None


def _bank(h, dtype=np.float64, what="kernels"):
    h = np.asarray(h)
    if h.ndim == 1:
        h = h[None, :]
    if h.ndim != 2:
        raise ValueError(f"{what} must have shape (L,) or (C, L), not {h.shape}")
    if h.shape[0] == 0 or h.shape[1] == 0:
        raise ValueError(f"{what} must not be empty (shape {h.shape})")
    return np.ascontiguousarray(h, dtype=dtype)


def _signal(u, C):
    """(T,) [C == 1], (C, T) or (B, C, T) -> contiguous (B, C, T) view, and the output shape."""
    u = np.asarray(u)
    dtype = np.float32 if u.dtype == np.float32 else np.float64
    shape = u.shape
    if u.ndim == 1:
        u = u[None, None, :]
    elif u.ndim == 2:
        u = u[None]
    elif u.ndim != 3:
        raise ValueError(f"signals must have shape (T,), (C, T) or (B, C, T), not {shape}")
    if u.shape[1] != C:
        raise ValueError(f"signal has {u.shape[1]} channels, expected {C}")
    if u.shape[2] == 0 or u.shape[0] == 0:
        raise ValueError("signals must not be empty")
    return np.ascontiguousarray(u, dtype=dtype), shape


def conv(h, u, threads=0):
    """Causal FFT convolution of each channel of u with its kernel:
    y[..., c, t] = sum_k h[c, k] u[..., c, t - k]. Same shape and dtype as u
    (a tensor for a tensor u)."""
    h, _ = _from_user(h, "conv kernels")
    u, back = _from_user(u, "conv signal")
    u3, shape = _signal(u, _bank(h).shape[0])
    hb = _bank(h, u3.dtype)
    y = np.empty_like(u3)
    B, C, T = u3.shape
    f = _lib.cr_conv_d if u3.dtype == np.float64 else _lib.cr_conv_f
    _check(f(_ptr(hb), C, hb.shape[1], _ptr(u3), B, T, _ptr(y), int(threads)), "conv")
    return back(y.reshape(shape))


def hsv(h, k=10, horizon="infinite"):
    """Leading k Hankel singular values of each kernel: (C, k) float64 numpy
    (zero-filled past the rank bound). horizon 'infinite' uses the FIR
    (zero-padded) Hankel, 'window' the window Hankel."""
    h, _ = _from_user(h, "hsv kernels")
    hb = _bank(h)
    C, L = hb.shape
    if L < 2:
        raise ValueError("kernels of length 1 have no Hankel singular values")
    hz = _choice(_HORIZONS, horizon, "horizon")
    k = int(min(k, L - 1))
    out = np.zeros((C, k))
    got = _c_size()
    for c in range(C):
        row = np.ascontiguousarray(hb[c])
        s = np.zeros(k)
        _check(_lib.cr_hsv(_ptr(row), L, hz, k, _ptr(s), ctypes.byref(got), None), "hsv")
        out[c] = s
    return out


class Model:
    """A fitted (or hand-built) modal model of C channels. Immutable.

    Channel c: hhat[0] = d[c], hhat[k] = sum_m w Re(residues[c, m] poles[c, m]^(k-1))
    for k >= 1, w = 2 for a conjugate pair (stored once), 1 for a real mode."""

    def __init__(self, handle):
        self._h = ctypes.c_void_p(handle)

    def __del__(self):
        if getattr(self, "_h", None) and _lib is not None:
            _lib.cr_model_destroy(self._h)
            self._h = None

    def __copy__(self):
        return self  # immutable: a shallow copy may share the handle

    def __deepcopy__(self, memo):
        h = _vp()
        _check(_lib.cr_model_copy(self._h, ctypes.byref(h)), "model copy")
        return Model(h.value)

    def __reduce__(self):
        # pickle (torch.save of a module holding a model) by value: modes, d, records
        v = self._view()
        return (Model._unpickle, (self.kinds, self.poles, self.residues, self.d,
                                  [bytes(v.record[c]) for c in range(v.C)], int(v.method), int(v.horizon)))

    @classmethod
    def _unpickle(cls, kinds, poles, residues, d, records, method, horizon):
        C, M = poles.shape
        h = _vp()
        _check(_lib.cr_model_create(ctypes.byref(h), C, M), "model")
        m = cls(h.value)
        for c in range(C):
            use = kinds[c] != 0
            k = np.ascontiguousarray(kinds[c][use], dtype=np.uint8)
            arrs = [np.ascontiguousarray(x, dtype=np.float64) for x in
                    (poles[c][use].real, poles[c][use].imag, residues[c][use].real, residues[c][use].imag)]
            _check(_lib.cr_model_set_channel(m._h, c, int(use.sum()), k.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte)),
                                             *[_ptr(x) for x in arrs], float(d[c])), "model")
            _lib.cr_model_set_record(m._h, c, ctypes.byref(_FitRecord.from_buffer_copy(records[c])))
        _lib.cr_model_set_info(m._h, method, horizon)
        return m

    def check_stable(self, margin=0.0):
        """Raise ConvrecError (unstable, naming channel, mode and |pole|)
        unless every |pole| <= 1 - margin (and < 1)."""
        _check(_lib.cr_model_check_stable(self._h, float(margin)), "model")

    @classmethod
    def load(cls, path):
        h = _vp()
        _check(_lib.cr_model_load(ctypes.byref(h), os.fsencode(path)), str(path))
        return cls(h.value)

    @classmethod
    def from_modes(cls, poles, residues, d=None):
        """Build a model from poles and residues (C, M) complex arrays, one
        representative per conjugate pair (imag != 0) or real modes (imag == 0);
        NaN poles mark unused slots. d: (C,) feedthrough."""
        poles = np.atleast_2d(np.asarray(poles, dtype=np.complex128))
        residues = np.atleast_2d(np.asarray(residues, dtype=np.complex128))
        if poles.ndim != 2 or residues.shape != poles.shape:
            raise ValueError(f"poles {poles.shape} and residues {residues.shape} must both be (C, M)")
        C, M = poles.shape
        d = np.zeros(C) if d is None else np.broadcast_to(np.asarray(d, dtype=np.float64), (C,))
        h = _vp()
        _check(_lib.cr_model_create(ctypes.byref(h), C, M), "model")
        m = cls(h.value)
        for c in range(C):
            use = ~np.isnan(poles[c])
            p, r = poles[c][use], residues[c][use]
            kind = np.where(p.imag != 0, 2, 1).astype(np.uint8)
            r = np.where(kind == 1, r.real, r)
            arrs = [np.ascontiguousarray(x, dtype=np.float64) for x in (p.real, p.imag, r.real, r.imag)]
            _check(_lib.cr_model_set_channel(m._h, c, len(p), kind.ctypes.data_as(ctypes.POINTER(ctypes.c_ubyte)),
                                             *[_ptr(x) for x in arrs], float(d[c])), "model")
        return m

    def _set_records_against(self, h):
        """Fill each channel's record with the model's errors against the
        kernels h (C, L) (cr_model_errors); sigma_next and bt_bound are kept
        (NaN for a hand-built model)."""
        h = _bank(h)
        if h.shape[0] != self.channels:
            raise ValueError(f"{h.shape[0]} kernels for a model of {self.channels} channels")
        v = self._view()
        for c in range(h.shape[0]):
            rec = _FitRecord.from_buffer_copy(v.record[c])
            _check(_lib.cr_model_errors(self._h, c, _ptr(np.ascontiguousarray(h[c])), h.shape[1],
                                        ctypes.byref(rec)), "model errors")
            _lib.cr_model_set_record(self._h, c, ctypes.byref(rec))

    def save(self, path):
        _check(_lib.cr_model_save(self._h, os.fsencode(path)), str(path))

    def _view(self):
        v = _ModelView()
        _check(_lib.cr_model_get_view(self._h, ctypes.byref(v)), "model")
        return v

    @property
    def channels(self):
        return self._view().C

    @property
    def modes(self):
        """M, the number of mode slots per channel (columns of poles)."""
        return self._view().M

    def orders(self):
        """Real state dimension N of each channel."""
        return np.array([_lib.cr_model_order(self._h, c) for c in range(self.channels)])

    def _arr(self, p, n):
        return np.ctypeslib.as_array(p, shape=(n,)).copy()

    @property
    def kinds(self):
        """(C, M) uint8: 0 unused, 1 real mode, 2 conjugate pair."""
        v = self._view()
        return np.ctypeslib.as_array(v.kind, shape=(v.C * v.M,)).reshape(v.C, v.M).copy()

    @property
    def poles(self):
        """(C, M) complex; one representative per pair; 0 where unused."""
        v = self._view()
        n = v.C * v.M
        return (self._arr(v.pole_re, n) + 1j * self._arr(v.pole_im, n)).reshape(v.C, v.M)

    @property
    def residues(self):
        v = self._view()
        n = v.C * v.M
        return (self._arr(v.res_re, n) + 1j * self._arr(v.res_im, n)).reshape(v.C, v.M)

    @property
    def d(self):
        v = self._view()
        return self._arr(v.d, v.C)

    def records(self):
        """Per-channel fit records as a dict of arrays."""
        v = self._view()
        recs = [v.record[c] for c in range(v.C)]
        return {name: np.array([getattr(r, name) for r in recs]) for name, _ in _FitRecord._fields_}

    @property
    def rate(self):
        """Sample rate in Hz the kernels were taken at (0.0: unknown)."""
        return _lib.cr_model_rate(self._h)

    def band_errors(self, h, rate=None):
        """Third-octave band errors (docs/MATH.md "Band errors") of every channel
        against the kernels h ((L,) or (C, L)) at rate (default: the model's):
        a dict with db_max, db_rms, worst_hz (arrays over channels), band_db
        ((C, nbands) signed errors, model minus kernel, dB) and fm (midband Hz)."""
        h, _ = _from_user(h, "band_errors kernels")
        hb = _bank(h)
        rate = self.rate if rate is None else float(rate)
        nb = _lib.cr_third_octave_bands(rate, None, None, None, 0)
        if nb == 0:
            raise ValueError(f"no third-octave band from 20 Hz to rate/2 at rate {rate} Hz")
        fm = np.zeros(nb)
        _lib.cr_third_octave_bands(rate, _ptr(fm), None, None, nb)
        C = hb.shape[0]
        if C != self.channels:
            raise ValueError(f"{C} kernels for a model of {self.channels} channels")
        out = {"db_max": np.empty(C), "db_rms": np.empty(C), "worst_hz": np.empty(C),
               "band_db": np.zeros((C, nb)), "fm": fm}
        for c in range(C):
            be = _clib.BandErrors()
            row = np.ascontiguousarray(hb[c])
            bd = np.zeros(nb)
            _check(_lib.cr_model_band_errors(self._h, c, _ptr(row), row.size, rate, ctypes.byref(be),
                                             _ptr(bd), nb), "band_errors")
            out["db_max"][c], out["db_rms"][c], out["worst_hz"][c] = be.db_max, be.db_rms, be.worst_hz
            out["band_db"][c] = bd
        return out

    def spectral_radius(self):
        return np.array([_lib.cr_model_spectral_radius(self._h, c) for c in range(self.channels)])

    def stream(self, batch=1, dtype=np.float64, allow_unstable=False):
        """A Stream running this model's recurrence for `batch` independent streams."""
        return Stream(self, batch, dtype, allow_unstable)

    def filter(self, u):
        """Run the recurrence over u ((T,), (C, T) or (B, C, T)) from zero state;
        same shape and dtype (float32 or float64) as u (a tensor for a tensor u)."""
        u, back = _from_user(u, "filter signal")
        u3, shape = _signal(u, self.channels)
        s = self.stream(u3.shape[0], u3.dtype)
        return back(s.block(u3).reshape(shape))

    def kernel(self, L):
        """(C, L) float64 impulse responses."""
        L = int(L)
        if L < 1:
            raise ValueError(f"kernel length must be >= 1, not {L}")
        out = np.empty((self.channels, L))
        _check(_lib.cr_model_kernel(self._h, L, _ptr(out)), "kernel")
        return out

    def reduce(self, order=None, tol=None, length=None, horizon="window", method="auto",
               margin=None, max_order=None, threads=0):
        """A new, smaller Model of this model's own kernel: give order (the real
        state dimension N) or tol (relative l2 error per channel).

        The kernel is materialised at `length` (default: the length this
        model's records refer to, e.g. the kernel length it was fitted on or
        the `length=` given to convrec.torch.from_s4d) and fitted like any
        kernel, so the result carries the same records (errors against that
        kernel, sigma_{N+1} and the bounds) as convrec.fit, and is exactly as
        good as fitting that kernel from scratch. horizon 'window' (default)
        counts the error on k < length only."""
        if order is None and tol is None:
            raise ValueError("reduce: give order=N or tol=EPS")
        if length is None:
            lengths = self.records()["length"]
            if lengths.size == 0 or lengths.min() == 0:
                raise ValueError("reduce: this model records no kernel length (hand-built model); "
                                 "give length=L")
            length = int(lengths.max())
        length = int(length)
        if length < 2:
            raise ValueError(f"reduce: length must be >= 2, not {length}")
        return fit(self.kernel(length), order=order, tol=tol, horizon=horizon, method=method,
                   margin=margin, max_order=max_order, threads=threads)

    def __repr__(self):
        try:
            o = self.orders()
            return f"<convrec.Model: {len(o)} channels, order {o.min()}..{o.max()}>"
        except Exception:  # a half-built model
            return "<convrec.Model>"


class Stream:
    """The recurrence of a Model for B streams: step (B, C) -> (B, C), block
    (B, C, T) -> (B, C, T), prefill, reset, and the state as an array.
    Never allocates while stepping; not to be shared between threads."""

    def __init__(self, model, batch=1, dtype=np.float64, allow_unstable=False):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError("dtype must be float32 or float64")
        self._x = "d" if self.dtype == np.float64 else "f"
        self._fn = lambda name: getattr(_lib, f"cr_stream_{self._x}_{name}")
        self._model = model  # keeps the model alive for the caller's convenience
        self.B, self.C = int(batch), model.channels
        h = _vp()
        _check(self._fn("create")(ctypes.byref(h), model._h, self.B, 1 if allow_unstable else 0), "stream")
        self._h = h

    def __del__(self):
        if getattr(self, "_h", None) and _lib is not None:
            self._fn("destroy")(self._h)
            self._h = None

    def _arr(self, u, ndim):
        u = np.ascontiguousarray(u, dtype=self.dtype)
        if u.ndim == ndim - 1:
            u = u[None]
        if u.ndim != ndim or u.shape[:2] != (self.B, self.C):
            raise ValueError(f"expected shape ({self.B}, {self.C}{', T' if ndim == 3 else ''}), not {u.shape}")
        return u

    def step(self, u):
        u, back = _from_user(u, "step input")
        u = self._arr(u, 2)
        y = np.empty_like(u)
        _check(self._fn("step")(self._h, _ptr(u), _ptr(y)), "step")
        return back(y)

    def block(self, u):
        u, back = _from_user(u, "block input")
        u = self._arr(u, 3)
        y = np.empty_like(u)
        _check(self._fn("block")(self._h, _ptr(u), u.shape[2], _ptr(y)), "block")
        return back(y)

    def prefill(self, u, method="auto"):
        """Consume a prompt (B, C, T) without producing outputs."""
        u, _ = _from_user(u, "prefill input")
        u = self._arr(u, 3)
        how = _choice({"auto": 0, "recurrence": 1, "fft": 2}, method, "prefill method")
        _check(self._fn("prefill")(self._h, _ptr(u), u.shape[2], None, how), "prefill")

    def reset(self):
        _check(self._fn("reset")(self._h), "reset")

    @property
    def state(self):
        """The state as (B, C, M, 2) real array (re, im of each mode)."""
        n = self._fn("state_len")(self._h)
        buf = np.empty(n, dtype=self.dtype)
        _check(self._fn("get_state")(self._h, _ptr(buf), n), "state")
        return buf.reshape(self.B, self.C, -1, 2)

    @state.setter
    def state(self, value):
        value, _ = _from_user(value, "state")
        buf = np.ascontiguousarray(value, dtype=self.dtype).ravel()
        _check(self._fn("set_state")(self._h, _ptr(buf), buf.size), "state")


def fit(h, order=None, tol=None, horizon="window", method="auto", margin=None, max_order=None, threads=0,
        weight="none", rate=None, tol_db=None):
    """Fit a stable modal model to each kernel of h ((L,) or (C, L); numpy or a
    torch tensor, e.g. the kernel a Hyena/CKConv/LongConv module produces,
    requires_grad or not). Give order (real state dimension N), tol
    (relative l2 error per channel) or tol_db (largest third-octave band
    error in dB; needs rate); none of them means the library default.
    rate (Hz) is recorded in the model and gives every record its band
    errors; weight="octave" (needs rate) makes every third-octave band count
    equally (docs/MATH.md "Weighted fits"). threads: OpenMP threads, one
    channel each (0: the OpenMP default); a pthreads OpenBLAS is set to one thread
    for the call and restored after (libconvrec needs that, convrec.h)."""
    h, _ = _from_user(h, "fit kernels")
    hb = _bank(h)
    o = _FitOptions()
    _lib.cr_fit_options_default(ctypes.byref(o))
    if sum(x is not None for x in (order, tol, tol_db)) > 1:
        raise ValueError("give one of order, tol and tol_db")
    if order is not None:
        if int(order) < 1:
            raise ValueError(f"order must be >= 1, not {order}")
        o.order, o.tol = int(order), 0.0
    elif tol is not None:
        if not float(tol) > 0:
            raise ValueError(f"tol must be > 0, not {tol}")
        o.order, o.tol = 0, float(tol)
    elif tol_db is not None:
        if not float(tol_db) > 0:
            raise ValueError(f"tol_db must be > 0, not {tol_db}")
        o.order, o.tol_db = 0, float(tol_db)
    o.weight = _choice({"none": 0, "octave": 1}, weight, "weight")
    if rate is not None:
        o.rate = float(rate)
    o.method = _choice(_METHODS, method, "method")
    o.horizon = _choice(_HORIZONS, horizon, "horizon")
    if margin is not None:
        o.margin = float(margin)
    if max_order is not None:
        o.max_order = int(max_order)
    o.nthreads = int(threads)
    m = _vp()
    with _single_threaded_blas():
        st = _lib.cr_fit(_ptr(hb), hb.shape[0], hb.shape[1], ctypes.byref(o), ctypes.byref(m))
    _check(st, "fit")
    return Model(m.value)


def __getattr__(name):
    # convrec.torch is imported on first use, so that `import convrec` never needs torch
    if name == "torch":
        import importlib
        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'convrec' has no attribute {name!r}")
