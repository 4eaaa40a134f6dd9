"""convrec: long convolution kernels to small stable state-space recurrences.

A thin numpy-in, numpy-out layer over libconvrec (ctypes). Kernels are
(C, L) arrays (or (L,)), signals (C, T) or (B, C, T), float32 or float64.
Errors raise ConvrecError with the library's status text and detail.
ctypes releases the GIL during every library call.

    import convrec
    m = convrec.fit(kernels, order=16)           # a Model
    y = m.filter(u)                              # recurrence, zero latency
    k = m.kernel(L)                              # (C, L) impulse responses
    m.save("model.safetensors"); convrec.Model.load("model.safetensors")
"""
import ctypes
import ctypes.util
import os

import numpy as np

__all__ = ["ConvrecError", "Model", "Stream", "conv", "hsv", "fit", "library_path"]

_c_size = ctypes.c_size_t
_p_double = ctypes.POINTER(ctypes.c_double)
_p_float = ctypes.POINTER(ctypes.c_float)


def library_path():
    """Where libconvrec is loaded from: $CONVREC_LIB (a file or a folder),
    the build folder next to this package, or the system library path."""
    env = os.environ.get("CONVREC_LIB")
    names = ["libconvrec.so", "libconvrec.so.0", "libconvrec.dylib"]
    if env:
        if os.path.isdir(env):
            for n in names:
                if os.path.exists(os.path.join(env, n)):
                    return os.path.join(env, n)
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for build in ("build", "build-asan", "."):
        d = os.path.join(here, "..", "..", build, ".libs")
        for n in names:
            p = os.path.join(d, n)
            if os.path.exists(p):
                return os.path.normpath(p)
    found = ctypes.util.find_library("convrec")
    if found:
        return found
    raise OSError("libconvrec not found: build it (./build.sh demo) or set CONVREC_LIB")


_lib = ctypes.CDLL(library_path())


class ConvrecError(RuntimeError):
    """A libconvrec call failed; .status is the cr_status code."""

    def __init__(self, status, what=""):
        text = _lib.cr_strerror(status).decode()
        detail = _lib.cr_error_detail().decode()
        msg = f"{what}: {text}" if what else text
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)
        self.status = status


class _FitRecord(ctypes.Structure):
    _fields_ = [("order", _c_size), ("length", _c_size), ("err_window", ctypes.c_double),
                ("err_infinite", ctypes.c_double), ("err_hinf", ctypes.c_double),
                ("h_norm", ctypes.c_double), ("sigma_next", ctypes.c_double),
                ("bt_bound", ctypes.c_double), ("band_db_max", ctypes.c_double),
                ("band_db_rms", ctypes.c_double), ("band_worst_hz", ctypes.c_double)]


class _ModelView(ctypes.Structure):
    _fields_ = [("C", _c_size), ("M", _c_size), ("kind", ctypes.POINTER(ctypes.c_ubyte)),
                ("pole_re", _p_double), ("pole_im", _p_double), ("res_re", _p_double),
                ("res_im", _p_double), ("d", _p_double), ("record", ctypes.POINTER(_FitRecord)),
                ("method", ctypes.c_int), ("horizon", ctypes.c_int), ("rate", ctypes.c_double)]


_PROGRESS = ctypes.CFUNCTYPE(None, ctypes.c_void_p, _c_size, _c_size)


class _FitOptions(ctypes.Structure):
    _fields_ = [("method", ctypes.c_int), ("horizon", ctypes.c_int), ("order", _c_size),
                ("tol", ctypes.c_double), ("max_order", _c_size), ("margin", ctypes.c_double),
                ("nthreads", ctypes.c_int), ("progress", _PROGRESS), ("progress_ctx", ctypes.c_void_p),
                ("weight", ctypes.c_int), ("rate", ctypes.c_double), ("tol_db", ctypes.c_double)]


class _BandErrors(ctypes.Structure):
    _fields_ = [("db_max", ctypes.c_double), ("db_rms", ctypes.c_double),
                ("worst_hz", ctypes.c_double), ("nbands", _c_size)]


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
_sig("cr_model_set_rate", ctypes.c_int, _vp, ctypes.c_double)
_sig("cr_third_octave_bands", _c_size, ctypes.c_double, _p_double, _p_double, _p_double, _c_size)
_sig("cr_model_band_errors", ctypes.c_int, _vp, _c_size, _p_double, _c_size, ctypes.c_double,
     ctypes.POINTER(_BandErrors), _p_double, _c_size)
_sig("cr_model_create", ctypes.c_int, ctypes.POINTER(_vp), _c_size, _c_size)
_sig("cr_model_set_channel", ctypes.c_int, _vp, _c_size, _c_size, ctypes.POINTER(ctypes.c_ubyte),
     _p_double, _p_double, _p_double, _p_double, ctypes.c_double)
_sig("cr_model_get_view", ctypes.c_int, _vp, ctypes.POINTER(_ModelView))
_sig("cr_model_order", _c_size, _vp, _c_size)
_sig("cr_model_spectral_radius", ctypes.c_double, _vp, _c_size)
_sig("cr_model_kernel", ctypes.c_int, _vp, _c_size, _p_double)
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

_METHODS = {"auto": 0, "bt": 1, "hna": 2, "pencil": 3}
_HORIZONS = {"window": 0, "infinite": 1}


def _check(status, what=""):
    if status != 0:
        raise ConvrecError(status, what)


def _ptr(a):
    return a.ctypes.data_as(_p_double if a.dtype == np.float64 else _p_float)


def _bank(h, dtype=np.float64):
    h = np.asarray(h)
    if h.ndim == 1:
        h = h[None, :]
    if h.ndim != 2:
        raise ValueError("kernels must have shape (L,) or (C, L)")
    if h.shape[0] == 0 or h.shape[1] == 0:
        raise ValueError("kernels must not be empty")
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
        raise ValueError("signals must have shape (T,), (C, T) or (B, C, T)")
    if u.shape[1] != C:
        raise ValueError(f"signal has {u.shape[1]} channels, expected {C}")
    if u.shape[2] == 0 or u.shape[0] == 0:
        raise ValueError("signals must not be empty")
    return np.ascontiguousarray(u, dtype=dtype), shape


def conv(h, u, threads=0):
    """Causal FFT convolution of each channel of u with its kernel:
    y[..., c, t] = sum_k h[c, k] u[..., c, t - k]. Same shape and dtype as u."""
    u3, shape = _signal(u, _bank(h).shape[0])
    hb = _bank(h, u3.dtype)
    y = np.empty_like(u3)
    B, C, T = u3.shape
    f = _lib.cr_conv_d if u3.dtype == np.float64 else _lib.cr_conv_f
    _check(f(_ptr(hb), C, hb.shape[1], _ptr(u3), B, T, _ptr(y), int(threads)), "conv")
    return y.reshape(shape)


def hsv(h, k=10, horizon="infinite"):
    """Leading k Hankel singular values of each kernel: (C, k) float64
    (zero-filled past the rank bound). horizon 'infinite' uses the FIR
    (zero-padded) Hankel, 'window' the window Hankel."""
    hb = _bank(h)
    C, L = hb.shape
    if L < 2:
        raise ValueError("kernels of length 1 have no Hankel singular values")
    k = int(min(k, L - 1))
    out = np.zeros((C, k))
    got = _c_size()
    for c in range(C):
        row = np.ascontiguousarray(hb[c])
        s = np.zeros(k)
        _check(_lib.cr_hsv(_ptr(row), L, _HORIZONS[horizon], k, _ptr(s), ctypes.byref(got), None), "hsv")
        out[c] = s
    return out


class Model:
    """A fitted (or hand-built) modal model of C channels. Immutable."""

    def __init__(self, handle):
        self._h = ctypes.c_void_p(handle)

    def __del__(self):
        if getattr(self, "_h", None) and _lib is not None:
            _lib.cr_model_destroy(self._h)
            self._h = None

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

    def save(self, path):
        _check(_lib.cr_model_save(self._h, os.fsencode(path)), str(path))

    def _view(self):
        v = _ModelView()
        _check(_lib.cr_model_get_view(self._h, ctypes.byref(v)), "model")
        return v

    @property
    def channels(self):
        return self._view().C

    def orders(self):
        """Real state dimension N of each channel."""
        return np.array([_lib.cr_model_order(self._h, c) for c in range(self.channels)])

    def _arr(self, p, n):
        return np.ctypeslib.as_array(p, shape=(n,)).copy()

    @property
    def kinds(self):
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
        """Third-octave band errors of every channel against the kernels h
        ((L,) or (C, L)) at rate (default: the model's): a dict with db_max,
        db_rms, worst_hz (arrays over channels), band_db ((C, nbands) signed
        errors, dB) and the bands' midband frequencies fm."""
        hb = _bank(h)
        rate = self.rate if rate is None else float(rate)
        nb = _lib.cr_third_octave_bands(rate, None, None, None, 0)
        fm = np.zeros(max(nb, 1))
        _lib.cr_third_octave_bands(rate, _ptr(fm), None, None, nb)
        C = hb.shape[0]
        if C != self.channels:
            raise ValueError(f"{C} kernels for a model of {self.channels} channels")
        out = {"db_max": np.empty(C), "db_rms": np.empty(C), "worst_hz": np.empty(C),
               "band_db": np.zeros((C, max(nb, 1))), "fm": fm[:nb]}
        for c in range(C):
            be = _BandErrors()
            row = np.ascontiguousarray(hb[c])
            bd = np.zeros(max(nb, 1))
            _check(_lib.cr_model_band_errors(self._h, c, _ptr(row), row.size, rate, ctypes.byref(be),
                                             _ptr(bd), nb), "band_errors")
            out["db_max"][c], out["db_rms"][c], out["worst_hz"][c] = be.db_max, be.db_rms, be.worst_hz
            out["band_db"][c] = bd
        out["band_db"] = out["band_db"][:, :nb]
        return out

    def spectral_radius(self):
        return np.array([_lib.cr_model_spectral_radius(self._h, c) for c in range(self.channels)])

    def stream(self, batch=1, dtype=np.float64, allow_unstable=False):
        """A Stream running this model's recurrence for `batch` independent streams."""
        return Stream(self, batch, dtype, allow_unstable)

    def filter(self, u):
        """Run the recurrence over u ((T,), (C, T) or (B, C, T)) from zero state;
        same shape and dtype (float32 or float64) as u."""
        u3, shape = _signal(u, self.channels)
        s = self.stream(u3.shape[0], u3.dtype)
        return s.block(u3).reshape(shape)

    def kernel(self, L):
        """(C, L) float64 impulse responses."""
        out = np.empty((self.channels, int(L)))
        _check(_lib.cr_model_kernel(self._h, int(L), _ptr(out)), "kernel")
        return out


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
        if u.shape[:2] != (self.B, self.C):
            raise ValueError(f"expected shape ({self.B}, {self.C}{', T' if ndim == 3 else ''})")
        return u

    def step(self, u):
        u = self._arr(u, 2)
        y = np.empty_like(u)
        _check(self._fn("step")(self._h, _ptr(u), _ptr(y)), "step")
        return y

    def block(self, u):
        u = self._arr(u, 3)
        y = np.empty_like(u)
        _check(self._fn("block")(self._h, _ptr(u), u.shape[2], _ptr(y)), "block")
        return y

    def prefill(self, u, method="auto"):
        """Consume a prompt (B, C, T) without producing outputs."""
        u = self._arr(u, 3)
        how = {"auto": 0, "recurrence": 1, "fft": 2}[method]
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
        buf = np.ascontiguousarray(value, dtype=self.dtype).ravel()
        _check(self._fn("set_state")(self._h, _ptr(buf), buf.size), "state")


def fit(h, order=None, tol=None, horizon="window", method="auto", margin=None, max_order=None, threads=0,
        weight="none", rate=None, tol_db=None):
    """Fit a stable modal model to each kernel of h ((L,) or (C, L)).
    Give order (real state dimension N), tol (relative l2 error per channel)
    or tol_db (largest third-octave band error in dB; needs rate).
    weight="octave" (needs rate, Hz) fits every third-octave band equally."""
    hb = _bank(h)
    o = _FitOptions()
    _lib.cr_fit_options_default(ctypes.byref(o))
    if sum(x is not None for x in (order, tol, tol_db)) > 1:
        raise ValueError("give one of order, tol and tol_db")
    if order is not None:
        o.order, o.tol = int(order), 0.0
    elif tol is not None:
        o.order, o.tol = 0, float(tol)
    elif tol_db is not None:
        o.order, o.tol_db = 0, float(tol_db)
    o.weight = {"none": 0, "octave": 1}[weight]
    if rate is not None:
        o.rate = float(rate)
    o.method = _METHODS[method]
    o.horizon = _HORIZONS[horizon]
    if margin is not None:
        o.margin = float(margin)
    if max_order is not None:
        o.max_order = int(max_order)
    o.nthreads = int(threads)
    m = _vp()
    _check(_lib.cr_fit(_ptr(hb), hb.shape[0], hb.shape[1], ctypes.byref(o), ctypes.byref(m)), "fit")
    return Model(m.value)


__version__ = _lib.cr_version().decode()
