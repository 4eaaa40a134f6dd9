"""The SOS export run section by section through scipy.signal.lfilter equals
the model kernel.

Run by tests/test_export (which writes the files) as
    python3 test_export_sos.py SOS.json KERNEL.txt C
or under pytest with CONVREC_SOS_JSON / CONVREC_SOS_KERNEL set (skipped
otherwise)."""
import json
import os
import sys

import numpy as np


def sos_impulse(channel, L):
    """Impulse response of d + sum of the parallel sections, by lfilter."""
    from scipy.signal import lfilter
    x = np.zeros(L)
    x[0] = 1.0
    y = channel["d"] * x
    for row in channel["sos"]:
        b, a = np.array(row[:3]), np.array(row[3:])
        y = y + lfilter(b, a, x)
    return y


def cmsis_impulse(channel, L):
    """Same with the CMSIS df2T rows {b0 b1 b2 -a1 -a2} turned back into
    lfilter's sign convention."""
    from scipy.signal import lfilter
    x = np.zeros(L)
    x[0] = 1.0
    y = channel["d"] * x
    for b0, b1, b2, na1, na2 in channel["cmsis_df2t"]:
        y = y + lfilter([b0, b1, b2], [1.0, -na1, -na2], x)
    return y


def check(sos_path, kernel_path, C):
    with open(sos_path) as f:
        sos = json.load(f)
    assert sos["format"] == "convrec-sos"
    h = np.loadtxt(kernel_path).reshape(C, -1)
    L = h.shape[1]
    for c, ch in enumerate(sos["channels"]):
        for y in (sos_impulse(ch, L), cmsis_impulse(ch, L)):
            err = np.linalg.norm(y - h[c]) / np.linalg.norm(h[c])
            assert err < 1e-12, (c, err)
            print("sos channel", c, "rel", err)
    return True


def test_sos_lfilter():
    import pytest
    p, k = os.environ.get("CONVREC_SOS_JSON"), os.environ.get("CONVREC_SOS_KERNEL")
    if not p or not k:
        pytest.skip("set CONVREC_SOS_JSON and CONVREC_SOS_KERNEL (tests/test_export does)")
    h = np.loadtxt(k)
    with open(p) as f:
        C = len(json.load(f)["channels"])
    assert check(p, k, C)


if __name__ == "__main__":
    sys.exit(0 if check(sys.argv[1], sys.argv[2], int(sys.argv[3])) else 1)
