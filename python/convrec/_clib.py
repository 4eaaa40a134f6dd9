"""Loading libconvrec, the struct mirrors, and the ABI guard.

Where the library comes from, first match wins:
  1. $CONVREC_LIB (a file or a folder), an explicit override for developers;
  2. the folder recorded when the package was built (setup.py writes it into
     convrec/_config.py: $CONVREC_LIBDIR at build time, else the libdir of an
     installed convrec.pc; `make install` records its own $(libdir));
  3. a library bundled inside the package folder (libconvrec.so*);
  4. a build folder of the source tree this package sits in (running from a
     checkout, e.g. PYTHONPATH=python);
  5. the dynamic linker's search path (libconvrec.so.0), then
     ctypes.util.find_library("convrec").

Every struct this package mirrors is compared, field by field, with the
layout the library reports (cr_abi_entry); a difference is an ImportError,
never silent memory corruption.
"""
import ctypes
import ctypes.util
import os
import re

try:  # written at build time by setup.py; absent when run from a checkout
    from . import _config
except ImportError:  # pragma: no cover - depends on how the package is run
    _config = None

_NAMES = ("libconvrec.so.0", "libconvrec.so", "libconvrec.0.dylib", "libconvrec.dylib")
_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCE_ROOT = os.path.normpath(os.path.join(_HERE, "..", ".."))


def _in_folder(d):
    for n in _NAMES:
        p = os.path.join(d, n)
        if os.path.exists(p):
            return p
    return None


def _candidates():
    """(where, path-or-name) pairs to try, in order."""
    env = os.environ.get("CONVREC_LIB")
    if env:
        yield "$CONVREC_LIB", (_in_folder(env) or env) if os.path.isdir(env) else env
    libdir = getattr(_config, "LIBDIR", None)
    if libdir:
        p = _in_folder(libdir)
        yield f"recorded at install ({libdir})", p or os.path.join(libdir, _NAMES[0])
    p = _in_folder(_HERE)
    if p:
        yield "bundled", p
    if os.path.exists(os.path.join(_SOURCE_ROOT, "configure.ac")):
        for build in ("build", "build-asan"):
            p = _in_folder(os.path.join(_SOURCE_ROOT, build, ".libs"))
            if p:
                yield "source tree", p
    yield "system", _NAMES[0]
    found = ctypes.util.find_library("convrec")
    if found:
        yield "find_library", found


def _load():
    tried = []
    for where, path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{where}: {e}")
            if where == "$CONVREC_LIB":  # an explicit choice must not fall through silently
                break
    raise ImportError("convrec: libconvrec not found or not loadable; tried:\n  " + "\n  ".join(tried) +
                      "\nInstall the library (make install), reinstall this package with "
                      "CONVREC_LIBDIR=<folder of libconvrec.so> pip install ..., or set CONVREC_LIB.")


def _version_from_source():
    try:
        with open(os.path.join(_SOURCE_ROOT, "configure.ac")) as f:
            m = re.search(r"AC_INIT\(\[[^]]*\],\s*\[([^]]+)\]", f.read())
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


VERSION = getattr(_config, "VERSION", None) or _version_from_source()

# ---------------------------------------------------------------------------
# Struct mirrors (include/convrec.h). Field names are the C names: the ABI
# guard compares them by name.
_c_size = ctypes.c_size_t
_p_double = ctypes.POINTER(ctypes.c_double)


class FitRecord(ctypes.Structure):
    _fields_ = [("order", _c_size), ("length", _c_size), ("err_window", ctypes.c_double),
                ("err_infinite", ctypes.c_double), ("err_hinf", ctypes.c_double),
                ("h_norm", ctypes.c_double), ("sigma_next", ctypes.c_double),
                ("bt_bound", ctypes.c_double)]


class ModelView(ctypes.Structure):
    _fields_ = [("C", _c_size), ("M", _c_size), ("kind", ctypes.POINTER(ctypes.c_ubyte)),
                ("pole_re", _p_double), ("pole_im", _p_double), ("res_re", _p_double),
                ("res_im", _p_double), ("d", _p_double), ("record", ctypes.POINTER(FitRecord)),
                ("method", ctypes.c_int), ("horizon", ctypes.c_int)]


PROGRESS = ctypes.CFUNCTYPE(None, ctypes.c_void_p, _c_size, _c_size)


class FitOptions(ctypes.Structure):
    _fields_ = [("method", ctypes.c_int), ("horizon", ctypes.c_int), ("order", _c_size),
                ("tol", ctypes.c_double), ("max_order", _c_size), ("margin", ctypes.c_double),
                ("nthreads", ctypes.c_int), ("progress", PROGRESS), ("progress_ctx", ctypes.c_void_p)]


class Array(ctypes.Structure):
    _fields_ = [("dtype", ctypes.c_int), ("ndim", ctypes.c_int), ("shape", _c_size * 3),
                ("data", ctypes.c_void_p)]


STRUCTS = {"cr_fit_record": FitRecord, "cr_model_view": ModelView,
           "cr_fit_options": FitOptions, "cr_array": Array}


def abi_table(lib):
    """{struct: {field: (offset, size)}} as the library reports it; the struct
    itself is the field ''."""
    try:
        n_fn, entry = lib.cr_abi_entries, lib.cr_abi_entry
    except AttributeError:
        raise ImportError("convrec: the library has no cr_abi_entries(): it is older than this "
                          "package; install a matching libconvrec") from None
    n_fn.restype, n_fn.argtypes = _c_size, []
    entry.restype = ctypes.c_int
    entry.argtypes = [_c_size, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_char_p),
                      ctypes.POINTER(_c_size), ctypes.POINTER(_c_size)]
    table = {}
    t, f, off, size = ctypes.c_char_p(), ctypes.c_char_p(), _c_size(), _c_size()
    for i in range(n_fn()):
        if entry(i, ctypes.byref(t), ctypes.byref(f), ctypes.byref(off), ctypes.byref(size)) != 0:
            raise ImportError(f"convrec: cr_abi_entry({i}) failed")
        table.setdefault(t.value.decode(), {})[f.value.decode()] = (off.value, size.value)
    return table


def check_abi(lib, structs=None, where="libconvrec"):
    """Raise ImportError unless every mirrored struct has exactly the fields,
    offsets and sizes the library reports."""
    structs = STRUCTS if structs is None else structs
    table = abi_table(lib)
    problems = []
    for cname, S in structs.items():
        c = table.get(cname)
        if c is None:
            problems.append(f"{cname}: not described by the library")
            continue
        py = {name: (getattr(S, name).offset, getattr(S, name).size) for name, *_ in S._fields_}
        py[""] = (0, ctypes.sizeof(S))
        for name in sorted(set(c) | set(py)):
            label = f"{cname}.{name}" if name else f"sizeof({cname})"
            if name not in py:
                problems.append(f"{label}: in the library, not in this package")
            elif name not in c:
                problems.append(f"{label}: in this package, not in the library")
            elif py[name] != c[name]:
                problems.append(f"{label}: package (offset, size) {py[name]} != library {c[name]}")
    if problems:
        raise ImportError(f"convrec: struct layouts of {where} do not match this package "
                          f"(package {VERSION}); reinstall the package that goes with the library:\n  "
                          + "\n  ".join(problems))


lib, path = _load()
check_abi(lib, where=path)
