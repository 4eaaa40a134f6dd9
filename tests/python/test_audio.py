"""Audio through the command and the package: audio inputs and outputs,
the sample rate in models, third-octave band errors against an independent
numpy computation, --trim, --weight octave, --tol-db, bad audio files, old
model files."""
import json
import os
import struct

import numpy as np
import pytest
import scipy.io.wavfile as wavfile

import convrec
from conftest import data_file, run

# libsndfile writes a PEAK chunk into float WAV files, which scipy skips (warning)
pytestmark = pytest.mark.filterwarnings("ignore::scipy.io.wavfile.WavFileWarning")

# ----------------------------------------------------------------------
# An independent implementation of the band error (docs/MATH.md "Band errors")


def good_size(n):
    """Smallest m >= n of the form 2^a 3^b 5^c 7^d, made even (the grid)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5, 7):
            while k % p == 0:
                k //= p
        if k == 1:
            return m + (m % 2)
        m += 1


def bands_ref(rate):
    out, x = [], -17
    while 1000 * 10 ** (x / 10) <= rate / 2:
        out.append((1000 * 10 ** (x / 10), 1000 * 10 ** ((2 * x - 1) / 20), min(1000 * 10 ** ((2 * x + 1) / 20), rate / 2)))
        x += 1
    return out


def model_response(m, c, z):
    H = np.full(z.shape, m.d[c], complex)
    for lam, r, k in zip(m.poles[c], m.residues[c], m.kinds[c]):
        if k == 0:
            continue
        H += r / (z - lam)
        if k == 2:
            H += np.conj(r) / (z - np.conj(lam))
    return H


def band_errors_ref(m, c, h, rate):
    n = good_size(max(8 * len(h), int(np.ceil(4 * rate))))
    j = np.arange(n // 2 + 1)
    f = j * rate / n
    H = np.fft.rfft(h, n)
    Hh = model_response(m, c, np.exp(2j * np.pi * j / n))
    P, Ph = [], []
    for fm, lo, hi in bands_ref(rate):
        sel = (f >= lo) & ((f < hi) if hi < rate / 2 else (f <= hi))
        P.append(np.mean(np.abs(H[sel]) ** 2))
        Ph.append(np.mean(np.abs(Hh[sel]) ** 2))
    P, Ph = np.array(P), np.array(Ph)
    fl = 1e-20 * max(P.max(), Ph.max())
    return 10 * np.log10(np.maximum(Ph, fl) / np.maximum(P, fl))


HERE = os.path.dirname(os.path.abspath(__file__))
CABINET = os.path.join(HERE, "..", "..", "examples", "cabinet_ir.npy")


@pytest.mark.parametrize("weight", ["none", "octave"])
def test_band_errors_match_numpy(weight):
    h = np.load(CABINET)
    m = convrec.fit(h, order=12, horizon="infinite", rate=48000, weight=weight)
    be = m.band_errors(h)
    ref = band_errors_ref(m, 0, h, 48000.0)
    assert be["band_db"].shape == (1, len(ref)) == (1, 31)
    np.testing.assert_allclose(be["band_db"][0], ref, rtol=0, atol=1e-9)
    assert abs(be["db_max"][0] - np.abs(ref).max()) < 1e-9
    assert abs(be["db_rms"][0] - np.sqrt(np.mean(ref ** 2))) < 1e-9
    assert be["worst_hz"][0] == pytest.approx(bands_ref(48000.0)[int(np.argmax(np.abs(ref)))][0], rel=1e-12)
    # the record holds the same figures
    r = m.records()
    assert r["band_db_max"][0] == be["db_max"][0] and r["band_db_rms"][0] == be["db_rms"][0]


def test_band_errors_of_a_shared_response():
    h = np.load(data_file("rir", "rir_clap.npy"))
    m = convrec.fit(h, order=8, horizon="infinite", rate=44100)
    ref = band_errors_ref(m, 0, h, 44100.0)
    np.testing.assert_allclose(m.band_errors(h)["band_db"][0], ref, rtol=0, atol=1e-8)


def test_weighted_beats_unweighted_on_the_room():
    h = np.load(data_file("rir", "rir_clap.npy"))
    u = convrec.fit(h, order=16, horizon="infinite", rate=44100).records()
    w = convrec.fit(h, order=16, horizon="infinite", rate=44100, weight="octave").records()
    assert w["band_db_max"][0] < u["band_db_max"][0]
    assert np.isfinite(w["err_infinite"][0]) and np.isfinite(w["err_hinf"][0]) and np.isfinite(w["sigma_next"][0])


# ----------------------------------------------------------------------
# the command


def test_fit_from_wav_records_the_rate(tmp):
    wav = data_file("rir", "rir_clap.wav")
    out = tmp / "m.safetensors"
    p = run("fit", wav, "-o", out, "--order", "12", "--horizon", "infinite", "--weight", "octave")
    assert "sample rate 44100 Hz" in p.stdout and "1/3-octave band error" in p.stdout
    info = json.loads(run("info", out, "--json").stdout)
    assert info["sample_rate"] == 44100
    m = convrec.Model.load(str(out))
    assert m.rate == 44100.0
    assert info["channel"][0]["band_db_max"] == pytest.approx(m.records()["band_db_max"][0], rel=1e-12)
    table = run("info", out).stdout
    assert "band_max" in table
    # the WAV reads as the .npy beside it: the same fit
    p2 = run("fit", data_file("rir", "rir_clap.npy"), "-o", tmp / "m2.safetensors", "--order", "12",
             "--horizon", "infinite", "--weight", "octave", "--rate", "44100")
    assert p2.stdout == p.stdout
    # verify shows the band errors too, recomputed against the kernels
    v = json.loads(run("verify", out, wav, "--steps", "2000", "--json").stdout)
    assert v["sample_rate"] == 44100
    assert v["channel"][0]["band_db_max"] == pytest.approx(m.records()["band_db_max"][0], abs=1e-5)
    # a --rate that contradicts the file is an error
    p = run("fit", wav, "-o", tmp / "x.safetensors", "--order", "4", "--rate", "48000", check=False)
    assert p.returncode == 1 and "44100" in p.stderr
    assert not (tmp / "x.safetensors").exists()


def test_weight_and_tol_db_need_a_rate(tmp):
    p = run("fit", CABINET, "-o", tmp / "m.safetensors", "--order", "4", "--weight", "octave", check=False)
    assert p.returncode == 2 and "sample rate" in p.stderr
    p = run("fit", CABINET, "-o", tmp / "m.safetensors", "--tol-db", "3", check=False)
    assert p.returncode == 2 and "sample rate" in p.stderr
    p = run("fit", CABINET, "-o", tmp / "m.safetensors", "--tol-db", "3", "--tol", "1e-3", "--rate", "48000",
            check=False)
    assert p.returncode == 2
    p = run("fit", CABINET, "-o", tmp / "m.safetensors", "--order", "4", "--weight", "third", "--rate", "48000",
            check=False)
    assert p.returncode == 2 and "--weight" in p.stderr


def test_tol_db(tmp):
    out = tmp / "m.safetensors"
    run("fit", CABINET, "-o", out, "--tol-db", "2", "--rate", "48000", "--weight", "octave",
        "--horizon", "infinite", "--max-order", "32")
    r = convrec.Model.load(str(out)).records()
    assert r["band_db_max"][0] <= 2.0
    n = int(r["order"][0])
    below = convrec.fit(np.load(CABINET), order=n - 1, horizon="infinite", rate=48000, weight="octave")
    assert below.records()["band_db_max"][0] > 2.0


def test_trim_cuts_silence_and_noise(tmp):
    """A decaying response after 2000 samples of -100 dB noise, on a -70 dB
    noise floor: --trim 60 cuts the silence and the tail below -60 dB."""
    rate, L, lead = 48000, 24000, 2000
    rng = np.random.default_rng(5)
    k = np.arange(L)
    h = 1e-5 * rng.standard_normal(L)
    env = np.where(k >= lead, 10.0 ** (-3.0 * (k - lead) / 9600.0), 0.0)  # 60 dB per 0.2 s
    h += 0.25 * rng.standard_normal(L) * env
    h[lead] = 1.0
    h += 3e-4 * rng.standard_normal(L)  # the floor, about -70 dB re the peak
    wav = tmp / "ir.wav"
    wavfile.write(wav, rate, h.astype(np.float32))
    out = tmp / "m.safetensors"
    p = run("fit", wav, "-o", out, "--order", "8", "--trim", "60", "--horizon", "infinite")
    line = [s for s in p.stdout.splitlines() if s.startswith("trim")][0]
    lead_cut = int(line.split("cut ")[1].split(" ")[0])
    assert lead - 24 <= lead_cut <= lead  # the 1 ms envelope (48 samples) reaches the onset early
    m = convrec.Model.load(str(out))
    L1 = int(m.records()["length"][0])
    # the envelope sqrt((0.25 * 10^(-3 t / 9600))^2 + floor^2) meets -60 dB re
    # the peak (1.0) at t = 3200 log10(0.25 / 9.5e-4) = 7745
    assert 7300 < L1 < 8300, line
    assert f"length {L} -> {L1}" in line
    # below the floor nothing is cut at the end
    p = run("fit", wav, "-o", out, "--order", "8", "--trim", "100", "--horizon", "infinite")
    assert "and 0 tail samples" in p.stdout


def _filtered_reference(m, u):
    return m.filter(np.ascontiguousarray(u, dtype=np.float64))


def test_filter_audio(tmp):
    rate = 44100
    model = tmp / "m.safetensors"
    run("fit", CABINET, "-o", model, "--order", "8", "--rate", str(rate), "--horizon", "infinite")
    m = convrec.Model.load(str(model))
    rng = np.random.default_rng(1)
    u = (0.05 * rng.standard_normal((2, 150000))).astype(np.float32)  # several blocks, stereo
    wav = tmp / "in.wav"
    wavfile.write(wav, rate, u.T)
    # a one-channel model filters both channels of a stereo file
    out = tmp / "out.wav"
    p = run("filter", model, wav, "-o", out)
    assert "real time" in p.stdout and "one core" in p.stdout
    r, y = wavfile.read(out)
    assert r == rate and y.dtype == np.float32 and y.shape == (150000, 2)
    ref = _filtered_reference(m, u.astype(np.float64)[:, None, :])[:, 0, :]
    np.testing.assert_allclose(y.T, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    # PCM output: saturated, counted, reported
    out16 = tmp / "out16.wav"
    p = run("filter", model, tmp / "in.wav", "-o", out16, "--subtype", "pcm16")
    r, y16 = wavfile.read(out16)
    assert y16.dtype == np.int16
    big = tmp / "loud.wav"
    wavfile.write(big, rate, (40 * u).T)
    p = run("filter", model, big, "-o", out16, "--subtype", "pcm16")
    clipped = int(np.sum(np.abs(40 * ref) * 32768 >= 32767.5))
    assert "clipped" in p.stderr and f" {clipped} of " in p.stderr
    # audio in, .npy out; .npy in, audio out (at the model's rate)
    run("filter", model, wav, "-o", tmp / "y.npy")
    np.testing.assert_allclose(np.load(tmp / "y.npy"), ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    np.save(tmp / "u.npy", 0.1 * u[:1].astype(np.float64))  # the model's gain is up to ~10
    p = run("filter", model, tmp / "u.npy", "-o", tmp / "y24.wav", "--subtype", "pcm24")
    assert "clipped" not in p.stderr
    r, y24 = wavfile.read(tmp / "y24.wav")
    assert r == rate and y24.dtype == np.int32  # 24-bit PCM, scaled to 32 bits by scipy
    np.testing.assert_allclose(y24 / 2.0 ** 31, 0.1 * ref[0], rtol=0, atol=2.0 ** -23)


def test_filter_rate_mismatch(tmp):
    model = tmp / "m.safetensors"
    run("fit", CABINET, "-o", model, "--order", "6", "--rate", "48000")
    wav = tmp / "in.wav"
    wavfile.write(wav, 44100, np.zeros(1000, np.float32) + 0.1)
    out = tmp / "out.wav"
    p = run("filter", model, wav, "-o", out, check=False)
    assert p.returncode == 1 and "44100" in p.stderr and "48000" in p.stderr
    assert not out.exists()
    p = run("filter", model, wav, "-o", out, "--force-rate")
    assert "warning" in p.stderr and out.exists()
    assert wavfile.read(out)[0] == 44100


def _truncated_wav(path):
    wavfile.write(path, 44100, (0.1 * np.ones((5000, 2))).astype(np.int16))
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


@pytest.mark.parametrize("make,needle", [
    (_truncated_wav, "truncated"),
    (lambda p: open(p, "wb").write(b"RIFF nonsense, not a sound file at all"), "libsndfile"),
    (lambda p: open(p, "wb").write(b""), "libsndfile"),
    (lambda p: wavfile.write(p, 8000, np.array([0.1, np.nan, 0.2], np.float32)), "NaN"),
    (lambda p: wavfile.write(p, 8000, np.zeros(0, np.int16)), "zero frames"),
])
def test_bad_audio_files(tmp, make, needle):
    bad = tmp / "bad.wav"
    make(bad)
    model = tmp / "m.safetensors"
    run("fit", CABINET, "-o", model, "--order", "4", "--rate", "8000")
    for args in (["fit", bad, "-o", tmp / "o.safetensors", "--order", "2"],
                 ["filter", model, bad, "-o", tmp / "o.wav"],
                 ["filter", model, bad, "-o", tmp / "o.npy"],
                 ["conv", bad, bad, "-o", tmp / "o.wav"],
                 ["hsv", bad]):
        p = run(*args, check=False)
        assert p.returncode == 1, (args, p.stderr)
        assert str(bad) in p.stderr and needle in p.stderr, (args, p.stderr)
    for o in ("o.safetensors", "o.wav", "o.npy"):
        assert not (tmp / o).exists()
    assert not [f for f in os.listdir(tmp) if ".tmp." in f]


def test_conv_and_hsv_take_audio(tmp):
    rate = 16000
    rng = np.random.default_rng(3)
    h = (0.3 * rng.standard_normal((2, 64)) * np.exp(-np.arange(64) / 10)).astype(np.float32)
    u = (0.2 * rng.standard_normal((2, 5000))).astype(np.float32)
    wavfile.write(tmp / "h.wav", rate, h.T)
    wavfile.write(tmp / "u.wav", rate, u.T)
    run("conv", tmp / "h.wav", tmp / "u.wav", "-o", tmp / "y.npy")
    y = np.load(tmp / "y.npy")
    ref = np.stack([np.convolve(h[c].astype(np.float64), u[c].astype(np.float64))[:5000] for c in range(2)])
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    run("conv", tmp / "h.wav", tmp / "u.wav", "-o", tmp / "y.wav")
    r, yw = wavfile.read(tmp / "y.wav")
    assert r == rate and yw.shape == (5000, 2)
    np.testing.assert_allclose(yw.T, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
    s = [x for x in run("hsv", tmp / "h.wav", "-n", "3").stdout.splitlines() if x.strip()]
    np.save(tmp / "h.npy", h)
    assert s == [x for x in run("hsv", tmp / "h.npy", "-n", "3").stdout.splitlines() if x.strip()]
    assert len(s) == 2


def test_old_model_file_loads_without_rate_and_bands(tmp):
    """A model file written before the sample rate and the band errors (no
    sample_rate metadata, no band tensors) loads: rate unknown, bands NaN."""
    m = convrec.fit(np.load(CABINET), order=6, rate=48000)
    p = tmp / "new.safetensors"
    m.save(str(p))
    raw = p.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    del hdr["__metadata__"]["sample_rate"]
    keep = sorted((k for k in hdr if k != "__metadata__" and not k.startswith("band_")),
                  key=lambda k: hdr[k]["data_offsets"][0])
    new_data, off, new_hdr = b"", 0, {"__metadata__": hdr["__metadata__"]}
    for k in keep:
        a, b = hdr[k]["data_offsets"]
        new_data += data[a:b]
        new_hdr[k] = dict(hdr[k], data_offsets=[off, off + b - a])
        off += b - a
    js = json.dumps(new_hdr).encode()
    js += b" " * (-len(js) % 8)
    old = tmp / "old.safetensors"
    old.write_bytes(struct.pack("<Q", len(js)) + js + new_data)
    o = convrec.Model.load(str(old))
    assert o.rate == 0.0
    r = o.records()
    assert np.isnan(r["band_db_max"][0]) and np.isnan(r["band_worst_hz"][0])
    assert r["err_window"][0] == m.records()["err_window"][0]
    info = json.loads(run("info", old, "--json").stdout)
    assert info["sample_rate"] is None and info["channel"][0]["band_db_max"] is None
    assert "band_max" not in run("info", old).stdout


def test_filter_usage_errors(tmp):
    model = tmp / "m.safetensors"
    run("fit", CABINET, "-o", model, "--order", "4", "--rate", "16000")
    wav = tmp / "in.wav"
    wavfile.write(wav, 16000, (0.1 * np.ones(500)).astype(np.float32))
    for args, code, needle in (
            (["--subtype", "mp3", "-o", tmp / "o.wav"], 2, "--subtype"),
            (["--subtype", "pcm16", "-o", tmp / "o.npy"], 2, "--subtype"),
            (["--rate", "8000", "-o", tmp / "o.wav"], 2, "--rate"),
            (["-o", tmp / "o.xyz"], 1, "extension"),
            (["--subtype", "float", "-o", tmp / "o.flac"], 1, "cannot hold")):
        p = run("filter", model, wav, *args, check=False)
        assert p.returncode == code and needle in p.stderr, (args, p.stderr)
    assert not [f for f in os.listdir(tmp) if f.startswith("o.")]
    # a stereo file for a 3-channel model
    m3 = convrec.fit(np.stack([np.load(CABINET)] * 3), order=4, rate=16000)
    m3.save(str(tmp / "m3.safetensors"))
    wavfile.write(tmp / "st.wav", 16000, (0.1 * np.ones((100, 2))).astype(np.float32))
    p = run("filter", tmp / "m3.safetensors", tmp / "st.wav", "-o", tmp / "o.wav", check=False)
    assert p.returncode == 1 and "2 channels" in p.stderr and "3" in p.stderr
    assert not (tmp / "o.wav").exists()
