/* Audio files (io/audio.c): round trips for each container and sample
 * format, saturation of PCM output, streaming in blocks, and bad files
 * (truncated, unsupported, zero channels, zero frames, NaN samples). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sndfile.h>

#include "testutil.h"
#include "convrec.h"

static char *tpath(const char *name)
{
    static char p[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", tu_tmpdir(), name);
    return p[i];
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

/* Signal (C, T) on the grid of a format: PCM of b bits holds k / 2^(b-1)
 * exactly, float32 holds float values, double anything. */
static double *signal(size_t C, size_t T, int bits, int is_float, uint64_t seed)
{
    uint64_t s = seed;
    double *x = malloc(C * T * sizeof *x);
    double q = bits ? ldexp(1.0, bits - 1) : 0.0;
    for (size_t i = 0; i < C * T; i++) {
        double v = 0.9 * tu_uniform(&s);
        if (bits) v = nearbyint(v * q) / q;
        else if (is_float) v = (double)(float)v;
        x[i] = v;
    }
    /* full scale reached both ways (negative full scale is representable) */
    if (bits) {
        x[0] = -1.0;
        x[1] = (q - 1.0) / q;
    }
    return x;
}

static void roundtrip(const char *name, cr_audio_subtype st, int bits, int is_float, size_t C,
                      double rate)
{
    const size_t T = 10007; /* several writer/reader chunks, not a multiple */
    double *x = signal(C, T, bits, is_float, 42 + (uint64_t)st);
    cr_array a = {CR_FLOAT64, 2, {C, T, 1}, x};
    const char *p = tpath(name);
    size_t clipped = 99;
    assert_int_equal(cr_audio_write(p, &a, rate, st, &clipped), CR_OK);
    assert_int_equal(clipped, 0);
    cr_array b;
    cr_audio_info info;
    assert_int_equal(cr_audio_read(p, &b, &info), CR_OK);
    assert_int_equal(b.ndim, 2);
    assert_int_equal(b.shape[0], C);
    assert_int_equal(b.shape[1], T);
    assert_true(info.rate == rate);
    assert_int_equal(info.channels, C);
    assert_int_equal(info.frames, T);
    const double *y = b.data;
    double worst = 0.0;
    for (size_t i = 0; i < C * T; i++) worst = fmax(worst, fabs(y[i] - x[i]));
    print_message("%-12s %-24s %-26s max |diff| %.1e\n", name, info.format, info.subtype, worst);
    assert_true(worst == 0.0); /* exact on the format's grid */
    cr_array_free(&b);
    free(x);
    unlink(p);
}

static void test_roundtrips(void **state)
{
    (void)state;
    roundtrip("a16.wav", CR_AUDIO_PCM16, 16, 0, 2, 44100);
    roundtrip("a24.wav", CR_AUDIO_PCM24, 24, 0, 1, 48000);
    roundtrip("a32.wav", CR_AUDIO_PCM32, 32, 0, 3, 96000);
    roundtrip("a8.wav", CR_AUDIO_PCM8, 8, 0, 1, 8000);
    roundtrip("f.wav", CR_AUDIO_FLOAT, 0, 1, 2, 44100);
    roundtrip("def.wav", CR_AUDIO_DEFAULT, 0, 1, 2, 44100);
    roundtrip("d.wav", CR_AUDIO_DOUBLE, 0, 0, 2, 44100);
    roundtrip("a16.flac", CR_AUDIO_PCM16, 16, 0, 2, 44100);
    roundtrip("a24.flac", CR_AUDIO_PCM24, 24, 0, 2, 48000);
    roundtrip("def.flac", CR_AUDIO_DEFAULT, 24, 0, 1, 48000); /* no float in FLAC: 24 bits */
    roundtrip("a16.aiff", CR_AUDIO_PCM16, 16, 0, 2, 44100);
    roundtrip("a24.aif", CR_AUDIO_PCM24, 24, 0, 1, 22050);
    roundtrip("f.aiff", CR_AUDIO_FLOAT, 0, 1, 2, 44100);
    roundtrip("f.caf", CR_AUDIO_FLOAT, 0, 1, 2, 44100);
    roundtrip("a16.au", CR_AUDIO_PCM16, 16, 0, 1, 16000);
}

/* PCM output saturates (never wraps) and counts what it saturated; float
 * output keeps values beyond full scale. */
static void test_clipping(void **state)
{
    (void)state;
    double x[8] = {0.5, 1.0, 1.5, -1.0, -1.2, 0.99999, -0.99999, 40.0};
    cr_array a = {CR_FLOAT64, 1, {8, 1, 1}, x};
    const char *p = tpath("clip.wav");
    size_t clipped = 0;
    assert_int_equal(cr_audio_write(p, &a, 8000, CR_AUDIO_PCM16, &clipped), CR_OK);
    /* 1.0 and 0.99999 round to 32768 > 32767; 1.5 and 40; -1.2 */
    assert_int_equal(clipped, 5);
    cr_array b;
    assert_int_equal(cr_audio_read(p, &b, NULL), CR_OK);
    const double *y = b.data, top = 32767.0 / 32768.0;
    assert_true(y[0] == 0.5 && y[1] == top && y[2] == top && y[3] == -1.0 && y[4] == -1.0);
    assert_true(y[7] == top);
    cr_array_free(&b);
    assert_int_equal(cr_audio_write(p, &a, 8000, CR_AUDIO_FLOAT, &clipped), CR_OK);
    assert_int_equal(clipped, 0);
    assert_int_equal(cr_audio_read(p, &b, NULL), CR_OK);
    assert_true(((double *)b.data)[7] == 40.0);
    cr_array_free(&b);
    unlink(p);
}

/* Streaming: blocks of any size give the whole-file read; a writer that
 * is not committed leaves nothing behind. */
static void test_streaming(void **state)
{
    (void)state;
    const size_t C = 2, T = 30001;
    double *x = signal(C, T, 24, 0, 9);
    cr_array a = {CR_FLOAT64, 2, {C, T, 1}, x};
    const char *p = tpath("stream.flac");
    assert_int_equal(cr_audio_write(p, &a, 44100, CR_AUDIO_PCM24, NULL), CR_OK);
    cr_audio_reader *r;
    cr_audio_info info;
    assert_int_equal(cr_audio_reader_open(&r, p, &info), CR_OK);
    const char *q = tpath("stream_out.wav");
    cr_audio_writer *w;
    assert_int_equal(cr_audio_writer_open(&w, q, info.rate, C, CR_AUDIO_PCM24), CR_OK);
    double buf[2 * 777];
    size_t got, total = 0;
    for (;;) {
        assert_int_equal(cr_audio_reader_read(r, buf, 777, 777, &got), CR_OK);
        if (got == 0) break;
        for (size_t c = 0; c < C; c++)
            for (size_t i = 0; i < got; i++) assert_true(buf[c * 777 + i] == x[c * T + total + i]);
        assert_int_equal(cr_audio_writer_write(w, buf, 777, got), CR_OK);
        total += got;
    }
    assert_int_equal(total, T);
    assert_false(exists(q)); /* not yet: written to a temporary file */
    assert_int_equal(cr_audio_writer_close(w, 1), CR_OK);
    cr_audio_reader_close(r);
    cr_array b;
    assert_int_equal(cr_audio_read(q, &b, NULL), CR_OK);
    assert_int_equal(b.shape[1], T);
    assert_memory_equal(b.data, x, C * T * sizeof *x);
    cr_array_free(&b);
    /* abandoned: nothing left, an existing file untouched */
    assert_int_equal(cr_audio_writer_open(&w, q, 44100, C, CR_AUDIO_FLOAT), CR_OK);
    assert_int_equal(cr_audio_writer_write(w, buf, 777, 100), CR_OK);
    assert_int_equal(cr_audio_writer_close(w, 0), CR_OK);
    assert_int_equal(cr_audio_read(q, &b, NULL), CR_OK);
    assert_int_equal(b.shape[1], T);
    cr_array_free(&b);
    unlink(q);
    assert_int_equal(cr_audio_writer_open(&w, q, 44100, C, CR_AUDIO_FLOAT), CR_OK);
    assert_int_equal(cr_audio_writer_close(w, 0), CR_OK);
    assert_false(exists(q));
    /* a NaN in the output: refused, and closing with commit keeps nothing */
    assert_int_equal(cr_audio_writer_open(&w, q, 44100, 1, CR_AUDIO_PCM16), CR_OK);
    double bad[3] = {0.1, NAN, 0.2};
    assert_int_equal(cr_audio_writer_write(w, bad, 3, 3), CR_ENONFINITE);
    assert_int_not_equal(cr_audio_writer_close(w, 1), CR_OK);
    assert_false(exists(q));
    unlink(p);
    free(x);
}

static void write_bytes(const char *p, const void *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

/* A 44-byte canonical WAV header (PCM16) with the given channels and
 * data size. */
static void wav_header(unsigned char *h, unsigned channels, uint32_t data_bytes)
{
    memcpy(h, "RIFF", 4);
    put32(h + 4, 36 + data_bytes);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, 1);
    put16(h + 22, (uint16_t)channels);
    put32(h + 24, 44100);
    put32(h + 28, 44100 * 2 * channels);
    put16(h + 32, (uint16_t)(2 * channels));
    put16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put32(h + 40, data_bytes);
}

static void expect_bad(const char *p, cr_status want, const char *why)
{
    cr_array b;
    cr_status s = cr_audio_read(p, &b, NULL);
    print_message("%-16s %-10s -> %s: %s\n", strrchr(p, '/') + 1, why, cr_strerror(s),
                  cr_error_detail());
    assert_int_equal(s, want);
    assert_null(b.data);
    /* the detail names the file */
    assert_non_null(strstr(cr_error_detail(), p));
}

static void truncate_half(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(truncate(p, st.st_size / 2), 0);
}

static void test_bad_files(void **state)
{
    (void)state;
    const size_t C = 2, T = 20000;
    double *x = signal(C, T, 16, 0, 1);
    cr_array a = {CR_FLOAT64, 2, {C, T, 1}, x};
    const char *names[3] = {"cut.wav", "cut.flac", "cut.aiff"};
    const cr_audio_subtype sts[3] = {CR_AUDIO_PCM16, CR_AUDIO_PCM16, CR_AUDIO_PCM24};
    for (int i = 0; i < 3; i++) {
        const char *p = tpath(names[i]);
        assert_int_equal(cr_audio_write(p, &a, 44100, sts[i], NULL), CR_OK);
        truncate_half(p);
        expect_bad(p, CR_EFORMAT, "truncated");
        /* the streaming reader finds it too (at open or when it ends) */
        cr_audio_reader *r;
        cr_status s = cr_audio_reader_open(&r, p, NULL);
        if (s == CR_OK) {
            double buf[2 * 4096];
            size_t got = 1;
            while (s == CR_OK && got > 0) s = cr_audio_reader_read(r, buf, 4096, 4096, &got);
            cr_audio_reader_close(r);
        }
        assert_int_equal(s, CR_EFORMAT);
        unlink(p);
    }
    /* not audio at all */
    const char *p = tpath("text.wav");
    write_bytes(p, "hello, this is not a sound file\n", 32);
    expect_bad(p, CR_EFORMAT, "unsupported");
    p = tpath("empty.wav");
    write_bytes(p, "", 0);
    expect_bad(p, CR_EFORMAT, "empty");
    /* zero channels, zero frames */
    unsigned char hdr[44 + 8];
    memset(hdr, 0, sizeof hdr);
    wav_header(hdr, 0, 8);
    p = tpath("zero_ch.wav");
    write_bytes(p, hdr, sizeof hdr);
    expect_bad(p, CR_EFORMAT, "0 channels");
    wav_header(hdr, 2, 0);
    p = tpath("zero_fr.wav");
    write_bytes(p, hdr, 44);
    expect_bad(p, CR_EFORMAT, "0 frames");
    /* a float file with a NaN sample (written by libsndfile directly) */
    p = tpath("nan.wav");
    SF_INFO si = {0};
    si.samplerate = 48000;
    si.channels = 2;
    si.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
    SNDFILE *sf = sf_open(p, SFM_WRITE, &si);
    assert_non_null(sf);
    float fb[200];
    for (int i = 0; i < 200; i++) fb[i] = 0.01f * (float)i;
    fb[151] = NAN;
    assert_int_equal(sf_writef_float(sf, fb, 100), 100);
    sf_close(sf);
    expect_bad(p, CR_ENONFINITE, "NaN");
    assert_non_null(strstr(cr_error_detail(), "channel 1, frame 75"));
    /* missing file, a folder */
    expect_bad(tpath("missing.wav"), CR_EIO, "missing");
    /* writing: unknown extension, bad arguments; nothing left behind */
    p = tpath("out.xyz");
    assert_int_equal(cr_audio_write(p, &a, 44100, CR_AUDIO_DEFAULT, NULL), CR_EUNSUPPORTED);
    assert_false(exists(p));
    p = tpath("out.flac");
    assert_int_equal(cr_audio_write(p, &a, 44100, CR_AUDIO_FLOAT, NULL), CR_EUNSUPPORTED);
    assert_int_equal(cr_audio_write(p, &a, 44100.5, CR_AUDIO_PCM16, NULL), CR_EINVAL);
    assert_int_equal(cr_audio_write(p, &a, 0, CR_AUDIO_PCM16, NULL), CR_EINVAL);
    x[5] = INFINITY;
    assert_int_equal(cr_audio_write(p, &a, 44100, CR_AUDIO_PCM16, NULL), CR_ENONFINITE);
    assert_false(exists(p));
    cr_audio_subtype t;
    assert_int_equal(cr_audio_subtype_parse("PCM24", &t), CR_OK);
    assert_int_equal(t, CR_AUDIO_PCM24);
    assert_int_equal(cr_audio_subtype_parse("mp3", &t), CR_EINVAL);
    free(x);
}

/* The shared measured response: the WAV reads as the .npy beside it
 * (the 16-bit samples / 32768). */
static void test_shared_wav(void **state)
{
    (void)state;
    const char *w = tu_data("rir/rir_clap.wav");
    if (!w) skip();
    char wp[1024];
    snprintf(wp, sizeof wp, "%s", w);
    const char *n = tu_data("rir/rir_clap.npy");
    if (!n) skip();
    cr_array a, b;
    cr_audio_info info;
    assert_int_equal(cr_audio_read(wp, &a, &info), CR_OK);
    assert_int_equal(cr_npy_read(n, &b), CR_OK);
    assert_true(info.rate == 44100.0);
    assert_int_equal(info.channels, 1);
    assert_int_equal(a.shape[1], cr_array_count(&b));
    assert_memory_equal(a.data, b.data, cr_array_count(&b) * sizeof(double));
    cr_array_free(&a);
    cr_array_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrips),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_shared_wav),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
