/* libFuzzer harness: the audio readers (libsndfile underneath). Whatever the
 * bytes, cr_audio_read must return a status, and on success a finite (C, T)
 * array that agrees with its info; the streaming reader must give the same
 * samples in odd-sized blocks (or the same error); and a 64-bit float WAV
 * written from the array must read back bit for bit. */
#include "fuzzutil.h"

#include "convrec.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *path = fz_path(d, n);
    cr_array a;
    cr_audio_info info;
    cr_status s = cr_audio_read(path, &a, &info);
    /* the streaming reader, in blocks of 7 frames */
    cr_audio_reader *r = NULL;
    cr_audio_info ri;
    cr_status rs = cr_audio_reader_open(&r, path, &ri);
    if (s != CR_OK) {
        CHECK(a.data == NULL);
        CHECK(cr_error_detail()[0] != '\0');
        if (rs == CR_OK) { /* the header may be fine and the samples not */
            double buf[7 * 64];
            size_t got = 1;
            cr_status e = CR_OK;
            while (e == CR_OK && got > 0 && ri.channels <= 64)
                e = cr_audio_reader_read(r, buf, 7, 7, &got);
            cr_audio_reader_close(r);
        }
        return 0;
    }
    CHECK(info.channels >= 1 && info.frames >= 1 && info.rate > 0 && isfinite(info.rate));
    CHECK(a.dtype == CR_FLOAT64);
    size_t C = a.ndim == 1 ? 1 : a.shape[0], T = a.shape[a.ndim - 1];
    CHECK(C == info.channels && T == info.frames && (a.ndim == 2 || C == 1));
    const double *x = a.data;
    for (size_t i = 0; i < C * T; i++) CHECK(isfinite(x[i]));
    CHECK(rs == CR_OK);
    CHECK(ri.channels == C && ri.frames == T && ri.rate == info.rate);
    if (C <= 64) {
        double buf[7 * 64];
        size_t t = 0, got;
        do {
            CHECK(cr_audio_reader_read(r, buf, 7, 7, &got) == CR_OK);
            CHECK(t + got <= T);
            for (size_t c = 0; c < C; c++)
                CHECK(memcmp(buf + c * 7, x + c * T + t, got * sizeof *buf) == 0);
            t += got;
        } while (got > 0);
        CHECK(t == T);
    }
    cr_audio_reader_close(r);
    if (T <= 1 << 16 && info.rate <= 1e6) {
        const char *p = fz_scratch(".wav");
        if (cr_audio_write(p, &a, info.rate, CR_AUDIO_DOUBLE, NULL) == CR_OK) {
            cr_array b;
            cr_audio_info bi;
            CHECK(cr_audio_read(p, &b, &bi) == CR_OK);
            CHECK(bi.channels == C && bi.frames == T);
            CHECK(memcmp(a.data, b.data, C * T * sizeof(double)) == 0);
            cr_array_free(&b);
        }
        unlink(p);
    }
    cr_array_free(&a);
    return 0;
}
