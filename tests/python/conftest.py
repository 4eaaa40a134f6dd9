import os
import subprocess

import numpy as np
import pytest

DATA = os.environ.get("CONVREC_DATA") or os.path.join(
    os.environ.get("CONVREC_SRCDIR", os.path.join(os.path.dirname(__file__), "..", "..")), "..", "shared", "data")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: a numerical test of a minute or more; build.sh's second full-suite stage "
        "(clang) deselects these with PYTEST_ADDOPTS='-m \"not slow\"' (the main stage runs them)")


def convrec_bin():
    b = os.environ.get("CONVREC_BIN")
    if b:
        return b
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "build", "convrec")


def run(*args, check=True):
    """Run the convrec command; returns CompletedProcess (text)."""
    p = subprocess.run([convrec_bin(), *map(str, args)], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"convrec {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
    return p


def rel_l2(a, b):
    return np.linalg.norm(np.ravel(a) - np.ravel(b)) / np.linalg.norm(np.ravel(b))


def data_file(*parts):
    p = os.path.join(DATA, *parts)
    if not os.path.exists(p):
        pytest.skip(f"shared data not present: {p}")
    return p


@pytest.fixture
def tmp(tmp_path):
    return tmp_path
