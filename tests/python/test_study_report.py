"""convrec study and convrec report (python/convrec/study.py, report.py):
the selection grammar, the Hankel bounds against a dense SVD, a study's
numbers against `convrec fit` + `convrec info --json`, Ctrl-C, bad input,
the pages' tables against `convrec info --json`, and the command's
hand-over (help texts, missing package)."""
import html.parser
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import convrec_bin, run

pytest.importorskip("matplotlib")
from convrec import inputs, study  # noqa: E402

SRC = os.environ.get("CONVREC_SRCDIR", os.path.join(os.path.dirname(__file__), "..", ".."))
HYENA = os.path.join(SRC, "examples", "hyena_filters.npy")
INFO_KEYS = ("order", "d", "spectral_radius", "stability_margin", "stable", "length", "err_window",
             "err_infinite", "err_hinf", "h_norm", "sigma_next", "bt_bound", "hinf_over_sigma", "within_bt_bound")


def same(a, b):
    """Equal as `convrec info --json` prints them: cJSON writes 15 digits when they read back within
    one DBL_EPSILON relative (its compare_double), else 17; booleans and null exactly."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    return a == b or abs(a - b) <= max(abs(a), abs(b)) * np.finfo(float).eps


def handover_env():
    """The command's hand-over runs this interpreter (it has the package)."""
    env = dict(os.environ)
    env["CONVREC_PYTHON"] = sys.executable
    return env


def cmd(*args, check=True, timeout=600):
    p = subprocess.run([convrec_bin(), *map(str, args)], capture_output=True, text=True, env=handover_env(),
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"convrec {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
    return p


def pymod(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "convrec", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


# ---------------------------------------------------------------- grammar
def test_channel_grammar():
    p = inputs.parse_channels
    assert p("0,3,7", 8)[0] == [0, 3, 7]
    assert p("0..3", 8)[0] == [0, 1, 2, 3]
    assert p("0..9:4", 10)[0] == [0, 4, 8]
    assert p("::16", 64)[0] == [0, 16, 32, 48]
    assert p("8:", 10)[0] == [8, 9]
    assert p("all", 3)[0] == [0, 1, 2]
    assert p("3,1,3", 5)[0] == [3, 1]  # order of first mention, repeats dropped
    e = [0.5, 0.1, 0.9, 0.3, np.nan]
    sel, lab = p("worst,median,best", 5, errors=e)
    assert sel == [2, 3, 1] and lab == {2: "worst", 3: "median", 1: "best"}
    for bad in ("", " ", "8", "0..8", "3..1", "::0", "x", "0,,1", "worst"):
        with pytest.raises(inputs.UserError):
            p(bad, 8)
    with pytest.raises(inputs.UserError, match="selects no channel"):
        p("5:2", 8)


def test_order_grammar():
    assert inputs.parse_orders("2,4,8") == [2, 4, 8]
    assert inputs.parse_orders("2..6") == [2, 3, 4, 5, 6]
    assert inputs.parse_orders("2..8:2,3") == [2, 3, 4, 6, 8]
    for bad in ("", "0", "a", "4..2", "2..8:0"):
        with pytest.raises(inputs.UserError):
            inputs.parse_orders(bad)


# ---------------------------------------------------------------- bounds
def fir_hankel_sv(h):
    L = h.size
    idx = np.arange(L - 1)
    hp = np.concatenate([h, np.zeros(L)])
    H = hp[idx[:, None] + idx[None, :] + 1]
    return np.linalg.svd(H, compute_uv=False)


def test_bounds_against_dense_svd(monkeypatch):
    rng = np.random.default_rng(3)
    L = 300
    k = np.arange(L)
    h = np.exp(-k / 40.0) * np.cos(0.3 * k) + 0.05 * rng.standard_normal(L) * np.exp(-k / 90.0)
    s = fir_hankel_sv(h)
    hv = study.hankel_values(h, 16)
    assert hv["complete"] and hv["count"] == L - 1
    np.testing.assert_allclose(hv["values"], s, rtol=1e-10, atol=1e-13 * s[0])
    for N in (0, 1, 5, 16, 100, L - 2, L - 1, L + 5):
        b = study.bounds_at(hv, N)
        sig = s[N] if N < s.size else 0.0
        tail = s[N:].sum() if N < s.size else 0.0
        assert b["exact"]
        assert abs(b["sigma_next"] - sig) <= 1e-10 * s[0]
        assert abs(b["hna_bound"] - tail) <= 1e-9 * s.sum()
        assert abs(b["bt_bound"] - 2 * tail) <= 2e-9 * s.sum()
    # only some values computed: upper bounds, flagged
    monkeypatch.setattr(study, "FULL_HSV_MAX", 50)
    hv = study.hankel_values(h, 8)
    assert not hv["complete"] and hv["count"] < L - 1
    for N in (2, 8, 20):
        b = study.bounds_at(hv, N)
        assert not b["exact"]
        assert abs(b["sigma_next"] - s[N]) <= 1e-8 * s[0]
        assert b["hna_bound"] >= s[N:].sum() * (1 - 1e-12)
        assert b["bt_bound"] == 2 * b["hna_bound"]


# ---------------------------------------------------------------- a study against the CLI
@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    d = tmp_path_factory.mktemp("study")
    H = np.load(HYENA)
    bank = np.ascontiguousarray(H[[3, 11], :1024])
    np.save(d / "bank.npy", bank)
    p = cmd("study", d / "bank.npy", "--orders", "3,6", "--horizon", "both", "--methods", "auto,bt,hna,pencil",
            "-o", d / "out")
    return d, bank, p


def test_study_agrees_with_fit_and_info(small_study):
    d, bank, p = small_study
    s = json.loads((d / "out" / "study.json").read_text())
    assert s["complete"] and s["format"] == "convrec-study"
    assert [c["channel"] for c in s["channels"]] == [0, 1]
    assert "median over channels" in p.stdout and "32 fits in" in p.stdout
    n = 0
    for hz in ("window", "infinite"):
        for me in ("auto", "bt", "hna", "pencil"):
            for N in (3, 6):
                m = d / f"m_{hz}_{me}_{N}.safetensors"
                run("fit", d / "bank.npy", "-o", m, "--order", N, "--horizon", hz, "--method", me, "-q")
                info = json.loads(run("info", m, "--json").stdout)
                assert info["method"] == me and info["horizon"] == hz
                for c in range(2):
                    fits = [f for f in s["channels"][c]["fits"]
                            if (f["horizon"], f["method"], f["order_requested"]) == (hz, me, N)]
                    assert len(fits) == 1 and "error" not in fits[0], fits
                    for key in INFO_KEYS:
                        a, b = fits[0][key], info["channel"][c][key]
                        # the same library code on the same kernel: the same doubles, up to
                        # how cJSON prints them
                        assert same(a, b), (hz, me, N, c, key, a, b)
                    n += 1
    assert n == 32


def test_study_bounds_and_page(small_study):
    d, bank, p = small_study
    s = json.loads((d / "out" / "study.json").read_text())
    for c, ch in enumerate(s["channels"]):
        sv = fir_hankel_sv(bank[c])
        assert ch["hsv"]["complete"]
        assert abs(ch["hinf_norm"] - np.abs(np.fft.rfft(bank[c], 8 * bank.shape[1])).max()) <= 1e-12 * ch["hinf_norm"]
        for b in ch["bounds"]:
            N = b["order"]
            assert abs(b["sigma_next"] - sv[N]) <= 1e-10 * sv[0]
            assert abs(b["bt_bound"] - 2 * sv[N:].sum()) <= 1e-9 * sv.sum()
            for f in ch["fits"]:
                if f["order"] == N:
                    # the model's record holds sigma_N+1 of the same Hankel matrix
                    assert abs(f["sigma_next"] - b["sigma_next"]) <= 1e-9 * sv[0]
                    # every stable order-N model is above the floor (AAK)
                    assert f["err_hinf"] >= b["sigma_next"] * (1 - 1e-9)
        for f in ch["fits"]:
            assert f["time_s"] > 0 and f["stable"] and f["stability_margin"] == 1 - f["spectral_radius"]
    page = (d / "out" / "index.html").read_text()
    assert page.count("<img src=\"data:image/png;base64,") == 3
    assert 'id="selfcheck"' in page and "study.json" in page


def test_study_formats_and_rerender(small_study, tmp_path):
    d, bank, p = small_study
    q = cmd("report", d / "out" / "study.json", "-o", tmp_path / "again", "--format", "svg,pdf", "--panels", "family")
    assert "index.html" in q.stdout
    for name in ("study_hinf", "study_l2", "study_time"):
        assert (tmp_path / "again" / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
        assert (tmp_path / "again" / "figures" / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"


def test_study_interrupt_keeps_what_is_finished(tmp_path):
    H = np.load(HYENA)
    np.save(tmp_path / "bank.npy", H[:6, :1024])
    out = tmp_path / "out"
    pr = pymod("study", tmp_path / "bank.npy", "--orders", "2..40", "--methods", "hna", "--horizon", "window",
               "--jobs", "1", "-o", out)
    js = out / "study.json"
    t0 = time.monotonic()
    while not js.exists() and time.monotonic() - t0 < 300 and pr.poll() is None:
        time.sleep(0.1)
    assert js.exists(), pr.communicate()
    pr.send_signal(signal.SIGINT)
    so, se = pr.communicate(timeout=300)
    if pr.returncode == 0:
        pytest.skip("the study finished before the interrupt")
    assert pr.returncode == 130, se
    assert "interrupted" in se
    s = json.loads(js.read_text())
    assert not s["complete"]
    nfit = sum(len(c["fits"]) for c in s["channels"])
    assert 0 < nfit < 6 * 39
    for c in s["channels"]:
        if c["complete"]:
            assert len(c["fits"]) == 39
    assert (out / "index.html").exists() and "interrupted" in (out / "index.html").read_text()
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


# ---------------------------------------------------------------- reports
class Cells(html.parser.HTMLParser):
    """data-key / data-value of every cell of the table with id tid, per row."""

    def __init__(self, tid):
        super().__init__()
        self.tid, self.inside, self.rows = tid, False, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.inside = a.get("id") == self.tid
        elif self.inside and tag == "tr":
            self.rows.append({})
        elif self.inside and tag == "td" and "data-key" in a:
            self.rows[-1][a["data-key"]] = a["data-value"]

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False


def parse_value(s):
    return json.loads(s)  # numbers (repr of a double), true, false, null


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    H = np.load(HYENA)
    np.save(d / "bank.npy", H[:6])
    run("fit", d / "bank.npy", "-o", d / "m.safetensors", "--order", "6", "-q")
    return d


def test_report_table_equals_info(model, tmp_path):
    d = model
    p = cmd("report", d / "m.safetensors", d / "bank.npy", "-o", tmp_path / "r", "--format", "png", "--rate", "16000")
    page = (tmp_path / "r" / "index.html").read_text()
    info = json.loads(run("info", d / "m.safetensors", "--json").stdout)
    t = Cells("summary")
    t.feed(page)
    rows = [r for r in t.rows if r]
    assert len(rows) == info["channels"] == 6
    for c, r in enumerate(rows):
        assert parse_value(r["channel"]) == c
        for key in INFO_KEYS:
            assert same(parse_value(r[key]), info["channel"][c][key]), (c, key, r[key], info["channel"][c][key])
    top = Cells("model")
    top.feed(page)
    for key in ("method", "horizon"):
        assert top.rows[-1][key] == info[key]
    for key in ("channels", "max_modes", "stable"):
        assert same(parse_value(top.rows[-1][key]), info[key])
    # worst and median by the window error (the model's horizon)
    e = [ch["err_window"] for ch in info["channel"]]
    order = np.argsort(e, kind="stable")
    worst, median = int(order[-1]), int(order[(len(e) - 1) // 2])
    assert f'id="channel{worst}"' in page and f'id="channel{median}"' in page
    assert page.count("<img ") == 3
    figs = sorted(os.listdir(tmp_path / "r" / "figures"))
    assert figs == sorted(["channels.png", f"channel{worst}.png", f"channel{median}.png"])
    assert "Hz" in page or "16000" in page
    assert "wrote" in p.stdout


def test_report_without_kernels_and_channels(model, tmp_path):
    d = model
    cmd("report", d / "m.safetensors", "-o", tmp_path / "r", "--channels", "0..2,5")
    page = (tmp_path / "r" / "index.html").read_text()
    for c in (0, 1, 2, 5):
        assert f'id="channel{c}"' in page
    assert 'id="channel3"' not in page and page.count("<img ") == 5


@pytest.mark.parametrize("case", ["channels", "length", "empty", "unwritable", "no-model", "not-model",
                                  "bad-channel", "kernels-nan", "output-is-input"])
def test_report_bad_input(model, tmp_path, case):
    d = model
    H = np.load(d / "bank.npy")
    args = [d / "m.safetensors", d / "bank.npy"]
    out = tmp_path / "out"
    opts = []
    need = None
    if case == "channels":
        np.save(tmp_path / "k.npy", H[:5])
        args[1], need = tmp_path / "k.npy", "has 5 channels but the model"
    elif case == "length":
        np.save(tmp_path / "k.npy", H[:, :1000])
        args[1], need = tmp_path / "k.npy", "length 1000"
    elif case == "empty":
        opts, need = ["--channels", ""], "empty"
    elif case == "bad-channel":
        opts, need = ["--channels", "0,6"], "channel 6 does not exist"
    elif case == "unwritable":
        (tmp_path / "file").write_text("x")
        out, need = tmp_path / "file" / "sub", "cannot write"
    elif case == "no-model":
        args[0], need = tmp_path / "none.safetensors", "no such file"
    elif case == "not-model":
        (tmp_path / "x.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
        args[0], need = tmp_path / "x.safetensors", "cannot load the model"
    elif case == "kernels-nan":
        K = H.copy()
        K[2, 7] = np.nan
        np.save(tmp_path / "k.npy", K)
        args[1], need = tmp_path / "k.npy", "not finite"
    elif case == "output-is-input":
        out.mkdir()
        os.link(d / "m.safetensors", out / "index.html")  # the model under the page's name
        args[0], need = out / "index.html", "would destroy the input"
    p = cmd("report", *args, "-o", out, *opts, check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.startswith("convrec report: ") and need in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    if case == "output-is-input":
        assert (out / "index.html").read_bytes() == (d / "m.safetensors").read_bytes()
    else:
        assert not (out / "index.html").exists() if out.parent.is_dir() else True


def test_study_bad_input(tmp_path):
    np.save(tmp_path / "k.npy", np.load(HYENA)[:3, :256])
    np.save(tmp_path / "int.npy", np.arange(10))
    cases = [(["--channels", "::0"], "step 0"), (["--channels", "7"], "channel 7 does not exist"),
             (["--orders", "0"], "positive"), (["--methods", "bt,xx"], "'xx' is not one of"),
             (["--horizon", "forever"], "'forever'"), (["--channels", "worst"], "needs the channels' errors"),
             (["--format", "gif"], "'gif'")]
    for opts, need in cases:
        p = cmd("study", tmp_path / "k.npy", "-o", tmp_path / "o", *opts, check=False)
        assert p.returncode == 1 and need in p.stderr, (opts, p.stderr)
        assert not (tmp_path / "o").exists()
    p = cmd("study", tmp_path / "int.npy", "-o", tmp_path / "o", check=False)
    assert p.returncode == 1 and "float32 or float64" in p.stderr
    p = cmd("study", tmp_path / "k.npy", check=False)
    assert p.returncode == 2 and "-o" in p.stderr


def test_wav_kernels(tmp_path):
    wavfile = pytest.importorskip("scipy.io.wavfile")
    x = (np.exp(-np.arange(400) / 30.0) * np.cos(0.2 * np.arange(400)) * 20000).astype(np.int16)
    wavfile.write(tmp_path / "ir.wav", 8000, np.stack([x, x // 2], axis=1))
    h, rate = inputs.load_kernels(str(tmp_path / "ir.wav"))
    assert rate == 8000 and h.shape == (2, 400)
    np.testing.assert_array_equal(h[0], x / 32768.0)
    cmd("study", tmp_path / "ir.wav", "--orders", "2,4", "--methods", "bt", "--horizon", "infinite", "-o", tmp_path / "o", "-q")
    s = json.loads((tmp_path / "o" / "study.json").read_text())
    assert s["families"][0]["rate"] == 8000 and len(s["channels"]) == 2


# ---------------------------------------------------------------- the hand-over
def option_names(text):
    text = text.replace("python3 -m convrec", "")
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z])\b", text))


@pytest.mark.parametrize("name", ["study", "report"])
def test_help_texts_agree(name):
    c = run(name, "--help")
    assert c.returncode == 0 and c.stdout.startswith(f"usage: convrec {name}") and c.stderr == ""
    py = subprocess.run([sys.executable, "-m", "convrec", name, "--help"], capture_output=True, text=True)
    assert py.returncode == 0
    # every option of the Python parser is in the command's help, and the other way round
    assert option_names(py.stdout) == option_names(c.stdout), (option_names(py.stdout) ^ option_names(c.stdout))


def test_missing_package_is_a_clear_error(tmp_path):
    env = dict(os.environ)
    env["CONVREC_PYTHON"] = sys.executable
    env["PYTHONPATH"] = str(tmp_path)  # a folder with a convrec that cannot be imported
    (tmp_path / "convrec").mkdir()
    (tmp_path / "convrec" / "__init__.py").write_text("raise ImportError('no libconvrec here')\n")
    p = subprocess.run([convrec_bin(), "study", "x.npy", "-o", str(tmp_path / "o")], capture_output=True,
                       text=True, env=env)
    if "no libconvrec here" not in p.stderr:
        pytest.skip("another convrec package comes first on this interpreter's path")
    assert p.returncode == 1 and p.stderr.startswith("convrec study: the convrec Python package cannot be imported")
    env["CONVREC_PYTHON"] = str(tmp_path / "nopython")
    p = subprocess.run([convrec_bin(), "report", "m", "-o", "o"], capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "no Python 3 at" in p.stderr and "CONVREC_PYTHON" in p.stderr
    p = subprocess.run([convrec_bin(), "report", "--help"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "usage: convrec report" in p.stdout
