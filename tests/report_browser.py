#!/usr/bin/python3
"""The report pages as a person sees them: opened in a real browser.

Makes a model of the bundled Hyena-style filters with `convrec fit`, its page
with `convrec report` and a small study's page with `convrec study`, opens
each in Debian's chromium (headless) and checks, from the DOM after load,
that every image decoded (naturalWidth > 0: the page's own check writes its
counts into #selfcheck), that the page raised no script error and logged
nothing to the console, and that every number of the page's summary table
equals `convrec info --json` for the same model. Keeps a screenshot of each
page in BUILDDIR/report-browser/. Exit 77 (skip) without chromium.
"""
import html.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.environ.get("CONVREC_BIN", "./convrec")
SRC = os.environ.get("CONVREC_SRCDIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
KEEP = os.path.join(os.environ.get("CONVREC_BUILDDIR", "."), "report-browser")
INFO_KEYS = ("order", "d", "spectral_radius", "stability_margin", "stable", "length", "err_window",
             "err_infinite", "err_hinf", "h_norm", "sigma_next", "bt_bound", "hinf_over_sigma", "within_bt_bound")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"]
failures = []


def check(what, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures.append(what)


def convrec(*args):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        sys.exit(f"convrec {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p.stdout


def chromium():
    for name in ("chromium", "chromium-browser"):
        p = shutil.which(name)
        if p:
            return p
    return None


def browse(browser, page, tmp, extra):
    """Run the browser on a file:// page with a fresh profile; (stdout, stderr)."""
    profile = tempfile.mkdtemp(prefix="profile-", dir=tmp)
    try:
        p = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *extra, "file://" + os.path.abspath(page)],
                           capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return p.returncode, p.stdout, p.stderr


class Dom(html.parser.HTMLParser):
    """#selfcheck's attributes and the data-key/data-value cells of table #summary."""

    def __init__(self):
        super().__init__()
        self.selfcheck, self.rows, self.inside, self.text = None, [], False, []
        self.in_check = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id") == "selfcheck":
            self.selfcheck = a
            self.in_check = True
        if tag == "table":
            self.inside = a.get("id") == "summary"
        elif self.inside and tag == "tr":
            self.rows.append({})
        elif self.inside and tag == "td" and "data-key" in a:
            self.rows[-1][a["data-key"]] = (a["data-value"], None)
            self.cur = a["data-key"]

    def handle_data(self, data):
        if self.in_check:
            self.text.append(data)
        if self.inside and self.rows and getattr(self, "cur", None):
            v, _ = self.rows[-1][self.cur]
            self.rows[-1][self.cur] = (v, data)
            self.cur = None

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        if tag == "div":
            self.in_check = False


def same(a, b):
    """Equal as `convrec info --json` prints them (cJSON: 15 digits when they read back within one
    DBL_EPSILON relative, else 17); booleans and null exactly."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return type(a) is type(b) and a == b
    return a == b or abs(a - b) <= max(abs(a), abs(b)) * np.finfo(float).eps


def shown_matches(text, value):
    """The rounded number shown in the cell is the value, to its printed digits."""
    if value is None:
        return text == "—"
    if isinstance(value, bool):
        return text == ("yes" if value else "no")
    t = float(text)
    digits = len(text.lower().split("e")[0].replace("-", "").replace(".", "").lstrip("0")) or 1
    return abs(t - value) <= 0.5 * 10 ** (np.floor(np.log10(abs(value))) - digits + 1) * 1.000001 if value else t == 0


def check_page(browser, page, tmp, name, expect_images, info=None):
    rc, dom, err = browse(browser, page, tmp, ["--dump-dom"])
    check(f"{name}: the browser ran", rc == 0 and "<html" in dom, f"exit {rc}: {err[-500:]}")
    d = Dom()
    d.feed(dom)
    sc = d.selfcheck or {}
    check(f"{name}: the page's check ran", sc.get("data-state") == "done", str(sc))
    check(f"{name}: {expect_images} images, all decoded (naturalWidth > 0)",
          sc.get("data-images") == str(expect_images) and sc.get("data-broken") == "0", "".join(d.text))
    check(f"{name}: no script errors", sc.get("data-errors") == "0", "".join(d.text))
    console = [l for l in err.splitlines() if ":CONSOLE" in l]
    check(f"{name}: nothing logged to the console", not console, "\n".join(console[:5]))
    if info is not None:
        rows = [r for r in d.rows if r]
        check(f"{name}: one table row per channel", len(rows) == info["channels"], f"{len(rows)} rows")
        bad = []
        for c, (r, ch) in enumerate(zip(rows, info["channel"])):
            for key in ("channel",) + INFO_KEYS:
                if key not in r:
                    bad.append(f"channel {c}: no {key}")
                    continue
                raw, text = r[key]
                v = json.loads(raw)
                want = c if key == "channel" else ch[key]
                if not same(v, want):
                    bad.append(f"channel {c} {key}: page {raw}, info {want}")
                elif text is None or not shown_matches(text.strip(), want):
                    bad.append(f"channel {c} {key}: shown '{text}' is not {want}")
        check(f"{name}: every number of the table equals convrec info --json", not bad, "; ".join(bad[:6]))
    shot = os.path.join(KEEP, f"{name}.png")
    rc, _, err = browse(browser, page, tmp, [f"--screenshot={os.path.abspath(shot)}", "--window-size=1280,2000"])
    ok = rc == 0 and os.path.exists(shot) and os.path.getsize(shot) > 10000
    check(f"{name}: screenshot kept in {shot}", ok, err[-300:])


def main():
    browser = chromium()
    if browser is None:
        print("chromium not found: skipped (Debian: apt-get install chromium)")
        return 77
    os.makedirs(KEEP, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="convrec-browser-") as tmp:
        H = np.load(os.path.join(SRC, "examples", "hyena_filters.npy"))
        bank = os.path.join(tmp, "bank.npy")
        np.save(bank, H[:8])
        model = os.path.join(tmp, "model.safetensors")
        convrec("fit", bank, "-o", model, "--order", "10", "-q")
        info = json.loads(convrec("info", model, "--json"))
        out = os.path.join(tmp, "report")
        convrec("report", model, bank, "-o", out, "--rate", "8000", "-q")
        check_page(browser, os.path.join(out, "index.html"), tmp, "report", 3, info)
        # the same model without its kernels: figures of the model alone
        out2 = os.path.join(tmp, "report-model")
        convrec("report", model, "-o", out2, "--channels", "0,3,7", "-q")
        check_page(browser, os.path.join(out2, "index.html"), tmp, "report-model-only", 4, info)
        out3 = os.path.join(tmp, "study")
        convrec("study", bank, "--channels", "0,5", "--orders", "2,4,8", "--methods", "bt,pencil", "-o", out3, "-q")
        check_page(browser, os.path.join(out3, "index.html"), tmp, "study", 3)
        shutil.copy(os.path.join(out, "index.html"), os.path.join(KEEP, "report.html"))
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
