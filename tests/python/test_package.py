"""The package as installed: where it and the library come from, the one
version, the ABI guard, error objects, and what `make install` puts in place."""
import ctypes
import glob
import os
import pickle
import copy
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import convrec
from convrec import _clib

SRCDIR = os.environ.get("CONVREC_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def configure_version():
    with open(os.path.join(SRCDIR, "configure.ac")) as f:
        return re.search(r"AC_INIT\(\[convrec\],\s*\[([^]]+)\]", f.read()).group(1)


def test_imported_from_the_installed_copy():
    venv = os.environ.get("CONVREC_EXPECT_INSTALLED")
    if not venv:
        pytest.skip("not run by tests/python.sh against an installed package")
    here = os.path.realpath(convrec.__file__)
    assert here.startswith(os.path.realpath(venv) + os.sep), here
    assert not here.startswith(os.path.realpath(os.path.join(SRCDIR, "python")) + os.sep)
    assert "CONVREC_LIB" not in os.environ and "PYTHONPATH" not in os.environ
    # the library is the one whose folder was recorded at install time
    assert _clib._config is not None and _clib._config.LIBDIR
    assert os.path.dirname(os.path.realpath(convrec.library_path())) == os.path.realpath(_clib._config.LIBDIR)


def test_one_version():
    v = configure_version()
    assert convrec.__version__ == v
    assert convrec.library_version() == v
    if os.environ.get("CONVREC_EXPECT_INSTALLED"):
        from importlib.metadata import version
        assert version("convrec") == v


def test_abi_table_covers_the_mirrors():
    table = _clib.abi_table(_clib.lib)
    for name, S in _clib.STRUCTS.items():
        assert table[name][""] == (0, ctypes.sizeof(S))
        assert set(table[name]) - {""} == {f[0] for f in S._fields_}
    _clib.check_abi(_clib.lib)  # the real mirrors pass


def _mirror(fields):
    return type("Mirror", (ctypes.Structure,), {"_fields_": fields})


@pytest.mark.parametrize("change,message", [
    # a member of the wrong size shifts everything after it
    (lambda f: [("order", ctypes.c_uint32)] + f[1:], r"cr_fit_record\.order: package \(offset, size\) \(0, 4\)"),
    # a member the package does not know
    (lambda f: f[:-1], r"cr_fit_record\.bt_bound: in the library, not in this package"),
    # a member the library does not have
    (lambda f: f + [("extra", ctypes.c_double)], r"cr_fit_record\.extra: in this package, not in the library"),
    # two members swapped: same size, wrong offsets
    (lambda f: [f[1], f[0]] + f[2:], r"cr_fit_record\.length"),
])
def test_abi_mismatch_is_an_import_error(change, message):
    bad = _mirror(change(list(_clib.FitRecord._fields_)))
    with pytest.raises(ImportError, match=message):
        _clib.check_abi(_clib.lib, {**_clib.STRUCTS, "cr_fit_record": bad})
    with pytest.raises(ImportError, match="cr_nonexistent: not described"):
        _clib.check_abi(_clib.lib, {"cr_nonexistent": _clib.FitRecord})


def test_abi_mismatch_stops_the_import(tmp_path):
    """A package copy whose cr_model_view mirror is wrong must fail at import,
    with the field named, before any call can corrupt memory."""
    pkg = os.path.dirname(convrec.__file__)
    shutil.copytree(pkg, tmp_path / "convrec", ignore=shutil.ignore_patterns("__pycache__"))
    src = (tmp_path / "convrec" / "_clib.py").read_text()
    broken = src.replace('("method", ctypes.c_int), ("horizon", ctypes.c_int)]',
                         '("method", ctypes.c_int64), ("horizon", ctypes.c_int)]')
    assert broken != src
    (tmp_path / "convrec" / "_clib.py").write_text(broken)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CONVREC_LIB"] = convrec.library_path()
    p = subprocess.run([sys.executable, "-c", "import convrec"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert p.returncode != 0
    assert "ImportError" in p.stderr and "cr_model_view.method" in p.stderr, p.stderr
    assert "sizeof(cr_model_view)" in p.stderr


def test_library_not_found_is_a_clear_import_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CONVREC_LIB"] = str(tmp_path / "nothing-here.so")
    p = subprocess.run([sys.executable, "-c", "import convrec"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert p.returncode != 0
    assert "libconvrec not found" in p.stderr and "$CONVREC_LIB" in p.stderr, p.stderr


def test_error_carries_status_text_and_detail():
    h = np.ones((2, 64))
    h[1, 5] = np.nan
    with pytest.raises(convrec.ConvrecError) as e:
        convrec.fit(h, order=4)
    assert e.value.status == -4
    assert e.value.text == "NaN or Inf in input"
    assert e.value.detail and e.value.detail in str(e.value)


def test_bad_arguments_are_refused_before_the_library():
    h = np.random.default_rng(0).standard_normal((2, 64))
    with pytest.raises(ValueError, match="method"):
        convrec.fit(h, order=4, method="magic")
    with pytest.raises(ValueError, match="horizon"):
        convrec.fit(h, order=4, horizon="forever")
    with pytest.raises(TypeError, match="complex"):
        convrec.fit(h + 1j, order=4)
    with pytest.raises(ValueError, match="order"):
        convrec.fit(h, order=0)
    with pytest.raises(ValueError, match=r"\(L,\) or \(C, L\)"):
        convrec.fit(h[None], order=4)


def test_model_copy_and_pickle_keep_everything(tmp_path):
    h = np.random.default_rng(1).standard_normal((3, 200)) * 0.97 ** np.arange(200)
    m = convrec.fit(h, order=6)
    for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert other._h.value != m._h.value
        np.testing.assert_array_equal(other.poles, m.poles)
        np.testing.assert_array_equal(other.residues, m.residues)
        np.testing.assert_array_equal(other.d, m.d)
        for k, v in m.records().items():
            np.testing.assert_array_equal(other.records()[k], v)
        other.save(tmp_path / "a.safetensors")
        m.save(tmp_path / "b.safetensors")
        assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


def test_make_install_layout():
    dest = os.environ.get("CONVREC_TEST_DESTDIR")
    if not dest:
        pytest.skip("make install-python was not run (configure found no pip/setuptools)")
    configs = glob.glob(os.path.join(dest, "**", "convrec", "_config.py"), recursive=True)
    assert len(configs) == 1, configs
    ns = {}
    exec(open(configs[0]).read(), ns)
    assert ns["VERSION"] == configure_version()
    assert ns["LIBDIR"] == os.environ["CONVREC_INSTALL_LIBDIR"]
    site = os.path.dirname(os.path.dirname(configs[0]))
    for f in ("__init__.py", "_clib.py", "torch.py", "examples/__init__.py"):
        assert os.path.exists(os.path.join(site, "convrec", f)), f
    meta = open(os.path.join(site, f"convrec-{configure_version()}.dist-info", "METADATA")).read()
    assert f"Version: {configure_version()}" in meta
