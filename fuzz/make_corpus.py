#!/usr/bin/python3
"""Seed corpora of the fuzz harnesses (fuzz/corpus/NAME/), valid files and
files at the boundaries (and command lines for fuzz_cli), written byte by byte from the format descriptions
(numpy's .npy format, docs/FORMAT.md, the safetensors layout, RIFF WAVE,
AIFF and Sun AU as their specifications lay them out), independently
of convrec's own writers. Deterministic: running it again gives the same
files. Usage: fuzz/make_corpus.py (numpy needed; Debian's /usr/bin/python3).
"""
import json
import os
import shutil
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
rng = np.random.default_rng(20261201)


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- .npy -------------------------------------------------------------
def npy(arr, version=1, header=None, fortran=False, extra=b""):
    descr = np.lib.format.dtype_to_descr(arr.dtype)
    if header is None:
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
            descr, fortran, tuple(arr.shape))
    pre = 10 if version == 1 else 12
    h = header.encode("latin1")
    pad = (64 - (pre + len(h) + 1) % 64) % 64
    h = h + b" " * pad + b"\n"
    out = b"\x93NUMPY" + bytes([version, 0])
    out += struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    data = arr.tobytes(order="F" if fortran else "C")
    return out + h + data + extra


def npy_corpus():
    put("npy", "f8_1d", npy(rng.standard_normal(5)))
    put("npy", "f4_2d", npy(rng.standard_normal((2, 3)).astype("<f4")))
    put("npy", "f8_3d", npy(rng.standard_normal((2, 2, 3))))
    put("npy", "be_f8", npy(rng.standard_normal(4).astype(">f8")))
    put("npy", "be_f4_2d", npy(rng.standard_normal((3, 2)).astype(">f4")))
    put("npy", "fortran_2d", npy(np.asfortranarray(rng.standard_normal((3, 4))), fortran=True))
    put("npy", "fortran_3d", npy(np.asfortranarray(rng.standard_normal((2, 3, 2))), fortran=True))
    put("npy", "v2", npy(rng.standard_normal(3), version=2))
    put("npy", "v3", npy(rng.standard_normal(3), version=3))
    put("npy", "one", npy(np.array([1.5])))
    # boundaries: refused files
    put("npy", "nan", npy(np.array([1.0, np.nan])))
    put("npy", "inf_f4", npy(np.array([np.inf], dtype="<f4")))
    put("npy", "zero_dim", npy(np.zeros((0, 3))))
    put("npy", "scalar", npy(np.array(2.0)))
    put("npy", "four_dims", npy(np.zeros((1, 1, 1, 2))))
    put("npy", "int64", npy(np.arange(3, dtype="<i8")))
    put("npy", "truncated", npy(rng.standard_normal(8))[:-5])
    put("npy", "trailing", npy(rng.standard_normal(2), extra=b"\0" * 8))
    put("npy", "bad_magic", b"\x93NUMPX\x01\x00" + npy(np.ones(2))[8:])
    put("npy", "huge_shape", npy(np.ones(1), header="{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }"))
    put("npy", "long_suffix", npy(np.ones(2), header="{'descr': '<f8', 'fortran_order': False, 'shape': (2L,), }"))
    put("npy", "preamble_only", b"\x93NUMPY\x01\x00")


# ---- safetensors ------------------------------------------------------
def safetensors(tensors, meta=None, order=None, pad=True, raw_header=None, extra=b""):
    """tensors: list of (name, dtype string, shape, bytes)."""
    hdr, off, data = {}, 0, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape, b in tensors:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        data += b
    h = raw_header if raw_header is not None else json.dumps(hdr, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data + extra


def le(a, dt):
    return np.ascontiguousarray(a).astype(dt).tobytes()


def safetensors_corpus():
    k = rng.standard_normal((3, 1, 8))
    put("safetensors", "conv1d_f32", safetensors(
        [("layer.0.filter.weight", "F32", (3, 1, 8), le(k, "<f4")),
         ("layer.0.bias", "F32", (3,), le(rng.standard_normal(3), "<f4"))],
        meta={"format": "pt"}))
    put("safetensors", "f16_2d", safetensors([("h", "F16", (2, 6), le(rng.standard_normal((2, 6)), "<f2"))]))
    bf = (np.frombuffer(le(rng.standard_normal(5), "<f4"), dtype="<u4") >> 16).astype("<u2")
    put("safetensors", "bf16_1d", safetensors([("k", "BF16", (5,), bf.tobytes())]))
    put("safetensors", "f64_mixed", safetensors(
        [("a", "F64", (4,), le(rng.standard_normal(4), "<f8")),
         ("ids", "I64", (2,), le(np.arange(2), "<i8")),
         ("mask", "BOOL", (3,), b"\x01\x00\x01"),
         ("q", "F4", (4,), b"\x12\x34")]))
    put("safetensors", "empty", safetensors([], meta={"k": "v"}))
    put("safetensors", "no_meta_zero_size", safetensors([("z", "F32", (0, 4), b"")]))
    put("safetensors", "special_values", safetensors(
        [("s", "F16", (4,), struct.pack("<4H", 0x7c00, 0x7e00, 0x0001, 0x8000))]))
    put("safetensors", "unicode_name", safetensors([("w\u00e9ight\u2603", "F32", (1,), le(np.ones(1), "<f4"))]))
    put("safetensors", "escaped", safetensors([], raw_header=b'{"a\\u00e9\\ud83d\\ude00\\n":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', extra=b"\0\0\x80\x3f"))
    put("safetensors", "gap", safetensors([], raw_header=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', extra=b"\0\0"))
    put("safetensors", "overlap", safetensors([], raw_header=b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', extra=b"\0\0\0"))
    put("safetensors", "header_too_long", struct.pack("<Q", 200_000_000) + b"{}")
    put("safetensors", "short", b"\x02\0\0\0")


# ---- model files (docs/FORMAT.md) -------------------------------------
TENSORS = ["poles", "residues", "d", "err_window", "err_infinite", "err_hinf", "h_norm",
           "sigma_next", "bt_bound", "orders", "length", "kinds"]


def model(kinds, poles, res, d, meta=None, rec=None, length=None):
    kinds = np.asarray(kinds, dtype="u1")
    C, M = kinds.shape
    rec = rec if rec is not None else {}
    vals = {
        "poles": ("F64", (C, M, 2), le(np.asarray(poles, dtype=float).reshape(C, M, 2), "<f8")),
        "residues": ("F64", (C, M, 2), le(np.asarray(res, dtype=float).reshape(C, M, 2), "<f8")),
        "d": ("F64", (C,), le(np.asarray(d, dtype=float), "<f8")),
        "orders": ("I64", (C,), le(kinds.astype(np.int64).sum(axis=1), "<i8")),
        "length": ("I64", (C,), le(np.full(C, 64 if length is None else length), "<i8")),
        "kinds": ("U8", (C, M), kinds.tobytes()),
    }
    for r in ["err_window", "err_infinite", "err_hinf", "h_norm", "sigma_next", "bt_bound"]:
        vals[r] = ("F64", (C,), le(np.asarray(rec.get(r, np.full(C, np.nan))), "<f8"))
    m = {"format": "convrec-modal", "format_version": "1", "method": "auto", "horizon": "window",
         "channels": str(C), "max_modes": str(M), "convrec_version": "0.1.0"}
    if meta:
        m.update(meta)
    return safetensors([(t,) + vals[t] for t in TENSORS], meta=m)


def model_corpus():
    put("model", "one_pair", model([[2]], [[0.9, 0.3]], [[0.5, -0.1]], [0.2],
                                   rec={"err_window": [1e-3], "h_norm": [1.0]}))
    put("model", "mixed", model([[2, 1, 0], [1, 0, 0], [2, 2, 1]],
                                [[0.5, 0.5, -0.3, 0, 0, 0], [0.99, 0, 0, 0, 0, 0],
                                 [0.1, 0.9, 0.7, 0.2, 0.9999, 0]],
                                [[1, 2, 3, 0, 0, 0], [-1, 0, 0, 0, 0, 0], [0.1, 0.1, 1, -1, 5, 0]],
                                [0, 1, -2], meta={"horizon": "infinite", "method": "hna"}))
    put("model", "d_only", model(np.zeros((2, 0), dtype="u1"), np.zeros((2, 0, 2)), np.zeros((2, 0, 2)),
                                 [1.5, -0.5], meta={"method": "none"}))
    put("model", "unstable", model([[1, 2]], [[1.5, 0, 0.2, 0.99]], [[1, 0, 1, 1]], [0]))
    put("model", "near_unit", model([[2, 2]], [[0.99999, 1e-4, -0.9999, 0.01]], [[1e3, 0, -1e3, 1]], [0]))
    put("model", "unused_slot_first", model([[0, 2]], [[0, 0, 0.5, 0.5]], [[0, 0, 1, 1]], [0.25]))
    put("model", "extra_meta", model([[1]], [[0.5, 0]], [[1, 0]], [0], meta={"note": "x\u00e9"}))
    # boundaries: refused files
    put("model", "bad_version", model([[1]], [[0.5, 0]], [[1, 0]], [0], meta={"format_version": "2"}))
    put("model", "pair_neg_im", model([[2]], [[0.5, -0.5]], [[1, 1]], [0]))
    put("model", "real_with_im", model([[1]], [[0.5, 0.1]], [[1, 0]], [0]))


# ---- command lines (fuzz_cli: byte 0 = command, NUL-separated args) ----
CMDS = ["fit", "kernel", "filter", "conv", "hsv", "info", "export", "verify", None]


def cli(name, cmd, *args):
    put("cli", name, bytes([CMDS.index(cmd)]) + b"\0".join(a.encode() for a in args))


def cli_corpus():
    cli("fit_order", "fit", "h.npy", "-o", "out.safetensors", "--order", "4", "--quiet")
    cli("fit_tol", "fit", "h.npy", "-o", "out.safetensors", "--tol", "1e-2", "--horizon",
        "infinite", "--method", "bt", "--threads", "1")
    cli("fit_bad_order", "fit", "h.npy", "-o", "out.safetensors", "--order", "-3")
    cli("kernel", "kernel", "m.safetensors", "--length", "40", "-o", "out.npy")
    cli("filter", "filter", "m.safetensors", "u.npy", "-o", "out.npy")
    cli("filter3", "filter", "m.safetensors", "u3.npy", "-o", "out.npy", "--allow-unstable")
    cli("conv", "conv", "h.npy", "u.npy", "-o", "out.npy", "--threads", "2")
    cli("hsv", "hsv", "h.npy", "-n", "3", "--json")
    cli("info", "info", "m.safetensors", "--json")
    cli("export_c", "export", "m.safetensors", "--format", "c", "--name", "flt", "-o", ".")
    cli("export_sos", "export", "m.safetensors", "--format", "sos", "-o", "out.json")
    cli("verify", "verify", "m.safetensors", "h.npy", "--steps", "100", "--precision", "float")
    cli("help", "fit", "--help")
    cli("version", None, "--version")
    cli("missing_value", "kernel", "m.safetensors", "--length")
    cli("unknown", "info", "m.safetensors", "--bogus")


# ---- audio (RIFF WAVE, AIFF, AU) -------------------------------------
def wav(samples, fmt_tag=1, bits=16, rate=8000, extensible=False, data_len=None, extra=b""):
    """samples: (C, T) array already in the file's encoding (ints or floats)."""
    C, T = samples.shape
    code = {(1, 8): "u1", (1, 16): "<i2", (1, 32): "<i4", (3, 32): "<f4", (3, 64): "<f8"}
    if (fmt_tag, bits) == (1, 24):
        v = samples.T.astype("<i4").ravel()
        raw = b"".join(int(x).to_bytes(4, "little", signed=True)[:3] for x in v)
    else:
        raw = samples.T.astype(code[(fmt_tag, bits)]).tobytes()
    ba = C * bits // 8
    if extensible:
        guid = struct.pack("<H", fmt_tag) + bytes.fromhex("000000001000800000aa00389b71")
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, C, rate, rate * ba, ba, bits, 22, bits, 0) + guid
    else:
        fmt = struct.pack("<HHIIHH", fmt_tag, C, rate, rate * ba, ba, bits)
    dl = len(raw) if data_len is None else data_len
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra + b"data" + struct.pack("<I", dl) + raw
    return b"RIFF" + struct.pack("<I", len(body)) + body


def ieee_ext(x):
    """An 80-bit IEEE extended float (AIFF's sample rate)."""
    m, e = np.frexp(float(x))
    return struct.pack(">HQ", int(e) - 1 + 16383, int(m * 2 ** 64))


def aiff(samples, rate=8000):
    C, T = samples.shape
    raw = samples.T.astype(">i2").tobytes()
    comm = struct.pack(">hIh", C, T, 16) + ieee_ext(rate)
    ssnd = struct.pack(">II", 0, 0) + raw
    body = b"AIFF" + b"COMM" + struct.pack(">I", len(comm)) + comm + b"SSND" + struct.pack(">I", len(ssnd)) + ssnd
    return b"FORM" + struct.pack(">I", len(body)) + body


def au(samples, enc=3, rate=8000):
    C, T = samples.shape
    raw = samples.T.astype({3: ">i2", 6: ">f4"}[enc]).tobytes()
    return b".snd" + struct.pack(">IIIII", 24, len(raw), enc, rate, C) + raw


def audio_corpus():
    x = rng.standard_normal((2, 40)) * 0.3
    i16 = np.round(x * 32767).clip(-32768, 32767)
    put("audio", "pcm16_stereo.wav", wav(i16))
    put("audio", "pcm16_mono.wav", wav(i16[:1], rate=44100))
    put("audio", "pcm8.wav", wav(np.round(x[:1] * 127 + 128).clip(0, 255), bits=8))
    put("audio", "pcm24.wav", wav(np.round(x * 2 ** 23).clip(-2 ** 23, 2 ** 23 - 1), bits=24))
    put("audio", "pcm32.wav", wav(np.round(x * 2 ** 31).clip(-2 ** 31, 2 ** 31 - 1), bits=32))
    put("audio", "float32.wav", wav(x, fmt_tag=3, bits=32, rate=48000))
    put("audio", "float64.wav", wav(x, fmt_tag=3, bits=64))
    put("audio", "extensible.wav", wav(i16, extensible=True))
    put("audio", "one_frame.wav", wav(i16[:, :1]))
    put("audio", "no_frames.wav", wav(i16[:, :0]))
    put("audio", "nan.wav", wav(np.array([[0.5, np.nan, 0.1]]), fmt_tag=3, bits=32))
    put("audio", "truncated.wav", wav(i16, data_len=4 * 80)[:-37])
    put("audio", "list_chunk.wav", wav(i16, extra=b"LIST" + struct.pack("<I", 4) + b"INFO"))
    put("audio", "pcm16.aiff", aiff(i16))
    put("audio", "pcm16.au", au(i16))
    put("audio", "float.au", au(x, enc=6))


if __name__ == "__main__":
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    npy_corpus()
    safetensors_corpus()
    model_corpus()
    audio_corpus()
    cli_corpus()
    for h in sorted(os.listdir(OUT)):
        files = os.listdir(os.path.join(OUT, h))
        size = sum(os.path.getsize(os.path.join(OUT, h, f)) for f in files)
        print(f"{h}: {len(files)} files, {size} bytes")
