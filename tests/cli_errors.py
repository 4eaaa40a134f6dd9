"""Bad input through every convrec subcommand: each must fail with a clear
message and exit status 1 (bad input) or 2 (usage), never crash, and never
leave an output file or touch an input. Also the command-line contract
around it: per-command --help, the --threads domain, --allow-unstable, the
progress bar. Uses the CLI only (numpy to make files), so it also runs
against the sanitizer build."""
import json
import os
import pty
import select
import struct
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.environ.get("CONVREC_BIN", "build/convrec")
failures = []
count = 0


COMMANDS = ["fit", "kernel", "filter", "conv", "hsv", "info", "export", "verify"]


def run(*args, env=None, timeout=120):
    e = None if env is None else {**os.environ, **env}
    try:
        return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, errors="replace",
                              timeout=timeout, env=e)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, -1000, "", f"(test) timed out after {timeout} s")


def check(what, ok, detail=""):
    """One test of a property that is not a plain error exit."""
    global count
    count += 1
    if not ok:
        failures.append(f"{what}: {detail}")


def sanitizer_clean(p):
    return "Sanitizer" not in p.stderr and "runtime error" not in p.stderr


def expect_intact(args, inputs, needle="same file"):
    """An output that is one of the inputs (same inode): refused with exit 1,
    the inputs byte for byte as they were."""
    before = {f: open(f, "rb").read() for f in inputs}
    p = run(*args)
    after = {f: open(f, "rb").read() for f in inputs}
    what = "convrec " + " ".join(map(str, args))
    check(what, p.returncode == 1 and needle in p.stderr.lower() and before == after and sanitizer_clean(p),
          f"exit {p.returncode}, inputs intact {before == after}, stderr: {p.stderr.strip()[:300]}")


def read_model(path):
    """The tensors of a model file (docs/FORMAT.md), with numpy alone."""
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    hdr = json.loads(blob[8:8 + n])
    dt = {"F64": np.float64, "I64": np.int64, "U8": np.uint8}
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(blob[8 + n + b:8 + n + e], dtype=dt[v["dtype"]]).reshape(v["shape"])
    return blob, n, hdr, out


def model_kernel(t, L):
    """hhat[0] = d, hhat[k] = sum_m w_m Re(r_m lambda_m^(k-1)) from the tensors."""
    C, M = t["kinds"].shape
    h = np.zeros((C, L))
    k = np.arange(L - 1)
    for c in range(C):
        h[c, 0] = t["d"][c]
        for j in range(M):
            kind = t["kinds"][c, j]
            if kind == 0:
                continue
            lam = complex(*t["poles"][c, j])
            r = complex(*t["residues"][c, j])
            h[c, 1:] += (2 if kind == 2 else 1) * np.real(r * lam ** k)
    return h


def run_on_pty(*args):
    """Run with stderr on a pseudo-terminal; returns (exit, stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([BIN, *map(str, args)], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        r, _, _ = select.select([master], [], [], 120)
        if not r:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    out = p.stdout.read().decode(errors="replace")
    p.wait(timeout=120)
    os.close(master)
    return p.returncode, out, shown.decode(errors="replace")


def expect(args, code, needle=None, out=None, timeout=120):
    global count
    count += 1
    if out and os.path.exists(out):
        os.unlink(out)
    p = run(*args, timeout=timeout)
    what = "convrec " + " ".join(map(str, args))
    bad = []
    if p.returncode != code:
        bad.append(f"exit {p.returncode}, want {code}")
    if not p.stderr.strip():
        bad.append("no message on stderr")
    if needle and needle.lower() not in p.stderr.lower():
        bad.append(f"message lacks {needle!r}")
    if "Sanitizer" in p.stderr or "runtime error" in p.stderr:
        bad.append("sanitizer report")
    if out and os.path.exists(out):
        bad.append(f"left {out} behind")
    if bad:
        failures.append(f"{what}: {'; '.join(bad)}\n    stderr: {p.stderr.strip()[:300]}")


def main():
    d = tempfile.mkdtemp(prefix="convrec-cli-")
    j = lambda n: os.path.join(d, n)
    rng = np.random.default_rng(0)
    h = rng.standard_normal((2, 64)) * np.exp(-np.arange(64) / 10)
    np.save(j("h.npy"), h)
    np.save(j("u.npy"), rng.standard_normal((2, 100)))
    ok = run("fit", j("h.npy"), "-o", j("m.safetensors"), "--order", 4, "--quiet")
    assert ok.returncode == 0, ok.stderr
    model = open(j("m.safetensors"), "rb").read()

    # malformed kernels / signals
    open(j("trunc.npy"), "wb").write(open(j("h.npy"), "rb").read()[:-8])
    open(j("text.npy"), "wb").write(b"hello world, not numpy")
    np.save(j("int.npy"), np.ones((2, 64), dtype=np.int32))
    np.save(j("c16.npy"), np.ones((2, 64), dtype=np.complex128))
    np.save(j("4d.npy"), np.ones((1, 1, 2, 64)))
    np.save(j("empty.npy"), np.ones((2, 0)))
    nan = h.copy(); nan[1, 5] = np.nan; np.save(j("nan.npy"), nan)
    for bad, needle in [("trunc.npy", "trunc"), ("text.npy", "text.npy"), ("int.npy", "dtype"),
                        ("c16.npy", "dtype"), ("4d.npy", "dimension"), ("empty.npy", "length 0"),
                        ("nan.npy", "NaN"), ("missing.npy", "missing.npy")]:
        expect(["fit", j(bad), "-o", j("o.safetensors"), "--order", 2], 1, needle, j("o.safetensors"))
        expect(["hsv", j(bad), "-o", j("o.npy")], 1, needle, j("o.npy"))
        expect(["conv", j("h.npy"), j(bad), "-o", j("o.npy")], 1, needle, j("o.npy"))
        expect(["filter", j("m.safetensors"), j(bad), "-o", j("o.npy")], 1, needle, j("o.npy"))
        expect(["verify", j("m.safetensors"), j(bad), "--steps", 100], 1, needle)
    # absurd or inconsistent arguments
    for args in (["--order", "0"], ["--order", "-1"], ["--order", "1e3"], ["--tol", "-1"], ["--tol", "inf"],
                 ["--margin", "1.5"], ["--threads", "0"], ["--method", "x"], ["--horizon", "x"], ["--bogus"]):
        expect(["fit", j("h.npy"), "-o", j("o.safetensors"), *args], 2, None, j("o.safetensors"))
    expect(["fit", j("h.npy"), "-o", j("o.safetensors"), "--order", 64], 1, "order", j("o.safetensors"))
    expect(["fit", j("h.npy"), "-o", j("o.safetensors"), "--order", 10 ** 12], 1, "order", j("o.safetensors"))
    expect(["fit", j("h.npy"), "-o", os.path.join(d, "nodir", "o.safetensors"), "--order", 2], 1, "nodir")
    expect(["kernel", j("m.safetensors"), "--length", 0, "-o", j("o.npy")], 2, None, j("o.npy"))
    expect(["kernel", j("m.safetensors"), "--length", 10 ** 15, "-o", j("o.npy")], 1, "length", j("o.npy"))
    expect(["hsv", j("h.npy"), "-n", 0], 2)
    expect(["conv", j("h.npy"), j("u.npy")], 2)
    np.save(j("u3.npy"), np.ones((3, 10)))
    expect(["conv", j("h.npy"), j("u3.npy"), "-o", j("o.npy")], 1, "channels", j("o.npy"))
    expect(["filter", j("m.safetensors"), j("u3.npy"), "-o", j("o.npy")], 1, "channels", j("o.npy"))
    expect(["export", j("m.safetensors"), "--format", "rust"], 2)
    expect(["export", j("m.safetensors"), "--format", "c", "--name", "not an identifier", "-o", d], 1, "name")
    expect(["verify", j("m.safetensors"), j("h.npy"), "--steps", 0], 2)
    expect([], 2)
    expect(["nonsense"], 2, "unknown")

    # corrupted model files: every consumer refuses them
    n = struct.unpack("<Q", model[:8])[0]
    corrupt = {
        "empty": b"",
        "short": model[:5],
        "hugelen": struct.pack("<Q", 1 << 60) + model[8:],
        "badjson": model[:8] + b"[" + model[9:],
        "truncdata": model[:-16],
        "extradata": model + b"\0" * 8,
    }
    hdr = model[8:8 + n].decode()
    for name, old, new in [("dtype", '"F64"', '"F32"'), ("shape", '"shape":[2', '"shape":[3'),
                           ("format", "convrec-modal", "convrec-other")]:
        if old in hdr:
            h2 = hdr.replace(old, new, 1).encode()
            corrupt[name] = struct.pack("<Q", len(h2)) + h2 + model[8 + n:]
    for name, blob in corrupt.items():
        p = j(f"bad_{name}.safetensors")
        open(p, "wb").write(blob)
        expect(["info", p], 1, f"bad_{name}")
        expect(["kernel", p, "--length", 10, "-o", j("o.npy")], 1, f"bad_{name}", j("o.npy"))
        expect(["filter", p, j("u.npy"), "-o", j("o.npy")], 1, f"bad_{name}", j("o.npy"))
        expect(["export", p, "--format", "json"], 1, f"bad_{name}")
    # random byte flips never crash (any exit status but a signal)
    for i in range(60):
        b = bytearray(model)
        k = int(rng.integers(0, len(b)))
        b[k] ^= 1 << int(rng.integers(0, 8))
        p = j("flip.safetensors")
        open(p, "wb").write(bytes(b))
        r = run("info", p)
        if r.returncode < 0 or r.returncode > 2 or "Sanitizer" in r.stderr:
            failures.append(f"byte flip at {k}: exit {r.returncode} {r.stderr[:200]}")
    contract(d, j, h, model)
    if failures:
        print("\n".join(failures))
    print(f"cli_errors: {count - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def contract(d, j, h, model):
    # every command answers --help and -h on stdout, exit 0; unknown options stay usage errors
    for c in COMMANDS:
        for flag in ("--help", "-h"):
            p = run(c, flag)
            check(f"convrec {c} {flag}", p.returncode == 0 and p.stdout.startswith(f"usage: convrec {c} ")
                  and "--help" in p.stdout and p.stderr == "", f"exit {p.returncode}: {p.stdout[:80]!r} {p.stderr[:200]!r}")
        expect([c, "--no-such-option"], 2, "unknown option")
    p = run("fit", j("h.npy"), "-o", j("never.safetensors"), "--help")  # help wins: nothing runs
    check("fit ... --help", p.returncode == 0 and not os.path.exists(j("never.safetensors")), p.stderr[:200])
    p = run("--help")
    check("convrec --help", p.returncode == 0 and all(c in p.stdout for c in COMMANDS), p.stderr[:200])

    # the --threads domain: 1..1024 on the command line, refused clearly beyond (exit 2, no output)
    for big in (100000, 1025, 0, -3, "x"):
        expect(["conv", j("h.npy"), j("u.npy"), "-o", j("o.npy"), "--threads", big], 2, "threads", j("o.npy"))
        expect(["fit", j("h.npy"), "-o", j("o.safetensors"), "--threads", big], 2, "threads", j("o.safetensors"))
        expect(["verify", j("m.safetensors"), j("h.npy"), "--threads", big, "--steps", 100], 2, "threads")
    u = np.load(j("u.npy"))
    ref = np.stack([np.convolve(h[c], u[c])[:u.shape[1]] for c in range(2)])
    p = run("conv", j("h.npy"), j("u.npy"), "-o", j("y.npy"), "--threads", 1024)
    check("conv --threads 1024", p.returncode == 0 and sanitizer_clean(p)
          and np.linalg.norm(np.load(j("y.npy")) - ref) <= 1e-12 * np.linalg.norm(ref), p.stderr[:300])
    # the library clips its default too: OMP_NUM_THREADS=100000 used to crash inside libgomp
    p = run("conv", j("h.npy"), j("u.npy"), "-o", j("y.npy"), env={"OMP_NUM_THREADS": "100000"})
    check("OMP_NUM_THREADS=100000 conv", p.returncode == 0 and sanitizer_clean(p)
          and np.linalg.norm(np.load(j("y.npy")) - ref) <= 1e-12 * np.linalg.norm(ref), p.stderr[:300])
    np.save(j("ub.npy"), np.random.default_rng(5).standard_normal((8, 2, 8192)))  # enough work for threads
    p = run("filter", j("m.safetensors"), j("ub.npy"), "-o", j("y.npy"), env={"OMP_NUM_THREADS": "100000"})
    check("OMP_NUM_THREADS=100000 filter", p.returncode == 0 and sanitizer_clean(p), p.stderr[:300])

    # an output that is an input is refused, the input untouched (same path, symlink, hard link)
    np.save(j("k.npy"), h)
    os.symlink(j("k.npy"), j("k_sym.npy"))
    os.link(j("k.npy"), j("k_hard.npy"))
    os.link(j("m.safetensors"), j("m_hard.safetensors"))
    os.link(j("u.npy"), j("u_hard.npy"))
    for o in ("k.npy", "k_sym.npy", "k_hard.npy"):
        expect_intact(["fit", j("k.npy"), "-o", j(o), "--order", 2, "--quiet"], [j("k.npy")])
        expect_intact(["hsv", j("k.npy"), "-o", j(o)], [j("k.npy")])
        expect_intact(["conv", j("k.npy"), j("u.npy"), "-o", j(o)], [j("k.npy"), j("u.npy")])
    for o in ("u.npy", "u_hard.npy"):
        expect_intact(["conv", j("k.npy"), j("u.npy"), "-o", j(o)], [j("k.npy"), j("u.npy")])
        expect_intact(["filter", j("m.safetensors"), j("u.npy"), "-o", j(o)], [j("m.safetensors"), j("u.npy")])
    for o in ("m.safetensors", "m_hard.safetensors"):
        expect_intact(["kernel", j("m.safetensors"), "--length", 10, "-o", j(o)], [j("m.safetensors")])
        expect_intact(["filter", j("m.safetensors"), j("u.npy"), "-o", j(o)], [j("m.safetensors"), j("u.npy")])
        expect_intact(["export", j("m.safetensors"), "--format", "json", "-o", j(o)], [j("m.safetensors")])
        expect_intact(["export", j("m.safetensors"), "--format", "sos", "-o", j(o)], [j("m.safetensors")])
    os.mkdir(j("cdir"))
    os.symlink(j("m.safetensors"), j("cdir/flt.c"))  # DIR/NAME.c would replace the model
    expect_intact(["export", j("m.safetensors"), "--format", "c", "--name", "flt", "-o", j("cdir")],
                  [j("m.safetensors")])
    os.link(j("m.safetensors"), os.path.join(d, "flt.h"))  # the default folder is '.'
    before = open(j("m.safetensors"), "rb").read()
    p = subprocess.run([os.path.abspath(BIN), "export", j("m.safetensors"), "--format", "c", "--name", "flt"],
                       capture_output=True, text=True, cwd=d, timeout=120)
    check("export --format c into . over the model", p.returncode == 1 and "same file" in p.stderr
          and open(j("m.safetensors"), "rb").read() == before, p.stderr[:300])
    # a different file of the same name elsewhere is fine
    p = run("fit", j("k.npy"), "-o", j("cdir/k.npy"), "--order", 2, "--quiet")
    check("fit -o another file", p.returncode == 0, p.stderr[:300])

    # --allow-unstable runs an unstable model, loudly; without it the model is refused
    open(j("m.safetensors"), "wb").write(model)  # in case a failure above replaced it
    blob, n, hdr, t = read_model(j("m.safetensors"))
    poles = t["poles"].copy()
    used = np.flatnonzero(t["kinds"][1])
    lam = complex(*poles[1, used[0]])
    poles[1, used[0]] *= 1.01 / abs(lam)  # channel 1, its first mode: |lambda| = 1.01
    b, e = hdr["poles"]["data_offsets"]
    bad = bytearray(blob)
    bad[8 + n + b:8 + n + e] = poles.astype("<f8").tobytes()
    open(j("unstable.safetensors"), "wb").write(bytes(bad))
    expect(["filter", j("unstable.safetensors"), j("u.npy"), "-o", j("o.npy")], 1, "unstable", j("o.npy"))
    if os.path.exists(j("yu.npy")):
        os.unlink(j("yu.npy"))
    p = run("filter", j("unstable.safetensors"), j("u.npy"), "-o", j("yu.npy"), "--allow-unstable")
    t["poles"] = poles
    k = model_kernel(t, u.shape[1])
    ref = np.stack([np.convolve(k[c], u[c])[:u.shape[1]] for c in range(2)])
    ok = p.returncode == 0 and sanitizer_clean(p) and os.path.exists(j("yu.npy"))
    check("filter --allow-unstable runs", ok and np.linalg.norm(np.load(j("yu.npy")) - ref)
          <= 1e-12 * np.linalg.norm(ref), f"exit {p.returncode}: {p.stderr[:300]}")
    check("filter --allow-unstable warns", "warning" in p.stderr and "channel 1 " in p.stderr
          and "1.010000000" in p.stderr and "channel 0 " not in p.stderr, p.stderr[:300])
    p = run("info", j("unstable.safetensors"))
    check("info shows an unstable model", p.returncode == 0 and "UNSTABLE" in p.stdout, p.stderr[:300])

    # bounds on absurd sizes: refused at once, with the numbers
    expect(["verify", j("m.safetensors"), j("h.npy"), "--steps", 2 ** 40], 2, "steps", timeout=20)
    expect(["verify", j("m.safetensors"), j("h.npy"), "--steps", 10 ** 9 + 1], 2, "steps", timeout=20)
    expect(["kernel", j("m.safetensors"), "--length", 10 ** 10, "-o", j("o.npy")], 1, "GiB", j("o.npy"))
    expect(["kernel", j("m.safetensors"), "--length", 2 ** 64 - 1, "-o", j("o.npy")], 1, "GiB", j("o.npy"))

    # a progress bar on a terminal (stderr), never in the quiet mode or when stderr is not a terminal
    rc, out, shown = run_on_pty("fit", j("h.npy"), "-o", j("pm.safetensors"), "--order", 4)
    check("fit progress bar on a terminal", rc == 0 and "fitting [" in shown and "2/2 channels" in shown
          and "channels 2" in out, f"exit {rc}: {shown[-300:]!r}")
    rc, out, shown = run_on_pty("fit", j("h.npy"), "-o", j("pm.safetensors"), "--order", 4, "--quiet")
    check("fit --quiet: no bar", rc == 0 and "fitting [" not in shown and out == "", f"{shown[-300:]!r}")
    p = run("fit", j("h.npy"), "-o", j("pm.safetensors"), "--order", 4)
    check("fit: no bar off a terminal", p.returncode == 0 and p.stderr == "", p.stderr[:300])


if __name__ == "__main__":
    sys.exit(main())
