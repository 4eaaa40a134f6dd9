"""Bad input through every convrec subcommand: each must fail with a clear
message and exit status 1 (bad input) or 2 (usage), never crash, and never
leave an output file. Uses the CLI only (numpy to make files), so it also
runs against the sanitizer build."""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

BIN = os.environ.get("CONVREC_BIN", "build/convrec")
failures = []
count = 0


def run(*args):
    return subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, errors="replace", timeout=120)


def expect(args, code, needle=None, out=None):
    global count
    count += 1
    if out and os.path.exists(out):
        os.unlink(out)
    p = run(*args)
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
    if failures:
        print("\n".join(failures))
    print(f"cli_errors: {count - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
