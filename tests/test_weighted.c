/* Audio fits: the third-octave band errors (model/audio.c), the
 * octave-weighted fit (fit/weighted.c) and the band tolerance (fit.c),
 * the sample rate in models and model files. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <complex.h>

#include "fitutil.h"
#include "testutil.h"

#define PI 3.141592653589793

/* A loudspeaker-cabinet-like response at rate: nres damped resonances at
 * log-spaced frequencies from 60 Hz to 8 kHz (Q 2..12, gains falling
 * with frequency), plus a faint decaying noise floor. */
static void cabinet(double *h, size_t L, double rate, size_t nres, uint64_t seed)
{
    uint64_t s = seed;
    memset(h, 0, L * sizeof *h);
    for (size_t i = 0; i < nres; i++) {
        double f = 60.0 * pow(8000.0 / 60.0, (double)i / (double)(nres - 1));
        f *= 1.0 + 0.04 * tu_uniform(&s);
        double q = 2.0 + 5.0 * (tu_uniform(&s) + 1.0);
        double g = tu_normal(&s) / sqrt(f / 60.0), ph = PI * (tu_uniform(&s) + 1.0) / 2.0;
        for (size_t k = 0; k < L; k++) {
            double t = (double)k / rate;
            h[k] += g * exp(-PI * f / q * t) * sin(2.0 * PI * f * t + ph);
        }
    }
    double big = 0.0;
    for (size_t k = 0; k < L; k++) big = fmax(big, fabs(h[k]));
    for (size_t k = 0; k < L; k++) h[k] = h[k] / big + 1e-3 * tu_normal(&s) * exp(-(double)k / (0.01 * rate));
}

/* A small-room-like response: a direct impulse, a few early reflections,
 * exponentially decaying noise (T60 = t60 s). */
static void room(double *h, size_t L, double rate, double t60, uint64_t seed)
{
    uint64_t s = seed;
    memset(h, 0, L * sizeof *h);
    h[0] = 1.0;
    for (int i = 0; i < 6; i++) {
        size_t k = (size_t)((0.1 + 0.45 * (tu_uniform(&s) + 1.0)) * (double)L / 8.0);
        if (k < L) h[k] += 0.5 * tu_uniform(&s);
    }
    for (size_t k = 1; k < L; k++)
        h[k] += 0.3 * tu_normal(&s) * pow(10.0, -3.0 * (double)k / (t60 * rate));
}

static cr_status fit1(const double *h, size_t L, double rate, cr_weight w, size_t N, double tol_db,
                      cr_model **m)
{
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.horizon = CR_HORIZON_INFINITE;
    o.order = N;
    o.rate = rate;
    o.weight = w;
    o.tol_db = tol_db;
    o.max_order = 32;
    return cr_fit(h, 1, L, &o, m);
}

/* The bands: IEC 61260-1 midband frequencies, contiguous edges, the top
 * band cut at rate/2. */
static void test_bands(void **state)
{
    (void)state;
    double fm[40], lo[40], hi[40];
    size_t nb = cr_third_octave_bands(44100.0, fm, lo, hi, 40);
    assert_int_equal(nb, 31); /* 20 Hz .. 20 kHz */
    assert_true(fabs(fm[0] - 19.952623149688797) < 1e-9);
    assert_true(fabs(fm[17] - 1000.0) < 1e-9);
    for (size_t b = 0; b + 1 < nb; b++) {
        assert_true(hi[b] == lo[b + 1]);
        assert_true(fabs(fm[b] * fm[b] - lo[b] * hi[b]) < 1e-9 * fm[b] * fm[b]);
    }
    assert_true(hi[nb - 1] == 22050.0);
    assert_int_equal(cr_third_octave_bands(48000.0, NULL, NULL, NULL, 0), 31);
    assert_int_equal(cr_third_octave_bands(8000.0, NULL, NULL, NULL, 0), 24);
    assert_int_equal(cr_third_octave_bands(30.0, NULL, NULL, NULL, 0), 0);
    assert_int_equal(cr_third_octave_bands(0.0, NULL, NULL, NULL, 0), 0);
    assert_int_equal(cr_third_octave_bands(NAN, NULL, NULL, NULL, 0), 0);
}

/* A model whose response is the kernel has no band error; the same
 * model with every residue and d doubled is 20 log10(2) dB loud in
 * every band. */
static void test_band_errors_exact(void **state)
{
    (void)state;
    const size_t L = 4096;
    const double rate = 16000.0;
    unsigned char kind[3] = {CR_MODE_PAIR, CR_MODE_PAIR, CR_MODE_REAL};
    double pr[3] = {0.9 * cos(0.3), 0.95 * cos(1.7), 0.6}, pi[3] = {0.9 * sin(0.3), 0.95 * sin(1.7), 0};
    double rr[3] = {0.7, -0.2, 0.4}, ri[3] = {0.1, 0.5, 0.0};
    cr_model *m, *m2;
    assert_int_equal(cr_model_create(&m, 1, 3), CR_OK);
    assert_int_equal(cr_model_set_channel(m, 0, 3, kind, pr, pi, rr, ri, 0.3), CR_OK);
    double *h = malloc(L * sizeof *h);
    assert_int_equal(cr_model_kernel(m, L, h), CR_OK); /* tail below 1e-80 */
    cr_band_errors be;
    double bd[64];
    assert_int_equal(cr_model_band_errors(m, 0, h, L, rate, &be, bd, 64), CR_OK);
    assert_int_equal(be.nbands, cr_third_octave_bands(rate, NULL, NULL, NULL, 0));
    assert_true(be.db_max < 1e-9);
    double rr2[3], ri2[3];
    for (int j = 0; j < 3; j++) rr2[j] = 2 * rr[j], ri2[j] = 2 * ri[j];
    assert_int_equal(cr_model_create(&m2, 1, 3), CR_OK);
    assert_int_equal(cr_model_set_channel(m2, 0, 3, kind, pr, pi, rr2, ri2, 0.6), CR_OK);
    assert_int_equal(cr_model_band_errors(m2, 0, h, L, rate, &be, bd, 64), CR_OK);
    const double six = 20.0 * log10(2.0);
    assert_true(fabs(be.db_max - six) < 1e-9);
    assert_true(fabs(be.db_rms - six) < 1e-9);
    for (size_t b = 0; b < be.nbands; b++) assert_true(fabs(bd[b] - six) < 1e-9);
    /* bad calls */
    assert_int_equal(cr_model_band_errors(m, 0, h, L, 30.0, &be, NULL, 0), CR_EINVAL);
    assert_true(isnan(be.db_max));
    assert_int_equal(cr_model_band_errors(m, 1, h, L, rate, &be, NULL, 0), CR_EINVAL);
    assert_int_equal(cr_model_band_errors(m, 0, h, 0, rate, &be, NULL, 0), CR_EINVAL);
    h[7] = NAN;
    assert_int_equal(cr_model_band_errors(m, 0, h, L, rate, &be, NULL, 0), CR_ENONFINITE);
    free(h);
    cr_model_destroy(m);
    cr_model_destroy(m2);
}

/* The analytic gradient of the weighted objective (closed-form band
 * energies, complex term) against central differences, for poles near
 * the circle, mid-disc and small (the series branch of I1). */
static void test_gradient(void **state)
{
    (void)state;
    const size_t L = 2048;
    const double rate = 48000.0;
    double *h = malloc(L * sizeof *h);
    cabinet(h, L, rate, 10, 7);
    cr__fitctx c;
    assert_int_equal(cr__fitctx_init(&c, h, L, CR_HORIZON_INFINITE, 1e-6), CR_OK);
    c.weight = CR_WEIGHT_OCTAVE;
    c.rate = rate;
    cr__modal m;
    assert_int_equal(cr__modal_alloc(&m, 6), CR_OK);
    const double rad[5] = {0.9995, 0.99, 0.9, 0.3, 0.6}, ang[5] = {0.01, 0.05, 0.4, 1.0, 0};
    for (int j = 0; j < 5; j++) {
        m.kind[j] = j < 4 ? CR_MODE_PAIR : CR_MODE_REAL;
        m.pole_re[j] = rad[j] * cos(ang[j]);
        m.pole_im[j] = j < 4 ? rad[j] * sin(ang[j]) : 0.0;
        m.res_re[j] = m.res_im[j] = 0.0;
    }
    m.n = 5;
    double rel;
    assert_int_equal(cr__weighted_gradcheck(&c, &m, &rel), CR_OK);
    print_message("weighted objective: gradient vs central differences %.2e\n", rel);
    assert_true(rel < 1e-5);
    cr__modal_free(&m);
    cr__fitctx_free(&c);
    free(h);
}

/* The acceptance in small: on synthetic cabinet and room responses, the
 * weighted fit has a lower largest band error than the unweighted one,
 * keeps every pole within 1 - margin, and records every error. */
static void test_weighted_beats_unweighted(void **state)
{
    (void)state;
    const size_t L = 2048;
    double *h = malloc(L * sizeof *h);
    struct { int kind; double rate; size_t N; uint64_t seed; } cases[] = {
        {0, 48000.0, 12, 1}, {0, 44100.0, 16, 2}, {1, 44100.0, 16, 3}, {1, 48000.0, 10, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].kind == 0) cabinet(h, L, cases[i].rate, 16, cases[i].seed);
        else room(h, L, cases[i].rate, 0.08, cases[i].seed);
        cr_model *mu, *mw;
        assert_int_equal(fit1(h, L, cases[i].rate, CR_WEIGHT_NONE, cases[i].N, 0, &mu), CR_OK);
        assert_int_equal(fit1(h, L, cases[i].rate, CR_WEIGHT_OCTAVE, cases[i].N, 0, &mw), CR_OK);
        cr_model_view vu, vw;
        cr_model_get_view(mu, &vu);
        cr_model_get_view(mw, &vw);
        const cr_fit_record *ru = &vu.record[0], *rw = &vw.record[0];
        print_message("case %zu (N = %zu): band max %.2f -> %.2f dB, rms %.2f -> %.2f dB\n", i,
                      cases[i].N, ru->band_db_max, rw->band_db_max, ru->band_db_rms,
                      rw->band_db_rms);
        assert_true(rw->band_db_max < ru->band_db_max);
        assert_true(cr_model_order(mw, 0) <= cases[i].N);
        assert_int_equal(cr_model_check_stable(mw, 1e-6), CR_OK);
        assert_true(isfinite(rw->err_window) && isfinite(rw->err_infinite) &&
                    isfinite(rw->err_hinf) && isfinite(rw->sigma_next));
        assert_true(vw.rate == cases[i].rate && cr_model_rate(mw) == cases[i].rate);
        /* the record is the public function's figure */
        cr_band_errors be;
        assert_int_equal(cr_model_band_errors(mw, 0, h, L, cases[i].rate, &be, NULL, 0), CR_OK);
        /* (to rounding: FFTW's SIMD paths depend on the arrays' alignment) */
        assert_true(fabs(be.db_max - rw->band_db_max) <= 1e-9 &&
                    fabs(be.db_rms - rw->band_db_rms) <= 1e-9 && be.worst_hz == rw->band_worst_hz);
        cr_model_destroy(mu);
        cr_model_destroy(mw);
    }
    free(h);
}

/* tol_db: the order found meets the band tolerance and is close to the
 * smallest that does (bisection ends between a miss and a hit; a fit at an
 * order depends slightly on the orders tried before it, whose singular
 * vectors the search shares, so the order just below, fitted alone, may
 * meet it: the one below that must not); works unweighted too. */
static void test_tol_db(void **state)
{
    (void)state;
    const size_t L = 2048;
    const double rate = 48000.0;
    double *h = malloc(L * sizeof *h);
    cabinet(h, L, rate, 12, 11);
    const cr_weight ws[2] = {CR_WEIGHT_OCTAVE, CR_WEIGHT_NONE};
    const double tol[2] = {1.5, 6.0};
    for (int i = 0; i < 2; i++) {
        cr_model *m, *m1;
        assert_int_equal(fit1(h, L, rate, ws[i], 0, tol[i], &m), CR_OK);
        cr_model_view v;
        cr_model_get_view(m, &v);
        size_t N = v.record[0].order;
        print_message("tol_db %.1f (%s): order %zu, band max %.2f dB\n", tol[i],
                      i == 0 ? "octave" : "unweighted", N, v.record[0].band_db_max);
        assert_true(v.record[0].band_db_max <= tol[i]);
        assert_true(N >= 1);
        /* (an l2 fit's band errors need not fall with the order: only the
         * octave-weighted search is held to near-minimality) */
        if (ws[i] == CR_WEIGHT_OCTAVE && N > 2) {
            assert_int_equal(fit1(h, L, rate, ws[i], N - 2, 0, &m1), CR_OK);
            cr_model_view v1;
            cr_model_get_view(m1, &v1);
            print_message("  order %zu alone: band max %.2f dB\n", N - 2, v1.record[0].band_db_max);
            assert_true(v1.record[0].band_db_max > tol[i]);
            cr_model_destroy(m1);
        }
        cr_model_destroy(m);
    }
    free(h);
}

static void test_bad_options(void **state)
{
    (void)state;
    const size_t L = 256;
    double h[256];
    cabinet(h, L, 48000.0, 4, 5);
    cr_model *m = (cr_model *)1;
    cr_fit_options o;
    cr_fit_options_default(&o);
    assert_int_equal(o.weight, CR_WEIGHT_NONE);
    assert_true(o.rate == 0.0 && o.tol_db == 0.0);
    o.order = 4;
    o.weight = CR_WEIGHT_OCTAVE; /* no rate */
    assert_int_equal(cr_fit(h, 1, L, &o, &m), CR_EINVAL);
    assert_null(m);
    o.rate = 30.0; /* no band */
    assert_int_equal(cr_fit(h, 1, L, &o, &m), CR_EINVAL);
    o.rate = -1.0;
    assert_int_equal(cr_fit(h, 1, L, &o, &m), CR_EINVAL);
    o.rate = NAN;
    assert_int_equal(cr_fit(h, 1, L, &o, &m), CR_EINVAL);
    o.rate = 48000.0;
    o.weight = (cr_weight)7;
    assert_int_equal(cr_fit(h, 1, L, &o, &m), CR_EINVAL);
    o.weight = CR_WEIGHT_NONE;
    o.order = 0;
    o.tol_db = -1.0;
    assert_int_equal(cr_fit(h, 1, L, &o, &m), CR_EINVAL);
    o.tol_db = 1.0;
    o.rate = 0.0;
    assert_int_equal(cr_fit(h, 1, L, &o, &m), CR_EINVAL);
    /* without a rate: no band errors, rate unknown */
    o.tol_db = 0.0;
    o.order = 4;
    assert_int_equal(cr_fit(h, 1, L, &o, &m), CR_OK);
    cr_model_view v;
    cr_model_get_view(m, &v);
    assert_true(isnan(v.record[0].band_db_max) && isnan(v.record[0].band_db_rms) &&
                isnan(v.record[0].band_worst_hz));
    assert_true(v.rate == 0.0);
    assert_int_equal(cr_model_set_rate(m, -5.0), CR_EINVAL);
    assert_int_equal(cr_model_set_rate(m, INFINITY), CR_EINVAL);
    assert_int_equal(cr_model_set_rate(m, 96000.0), CR_OK);
    assert_true(cr_model_rate(m) == 96000.0);
    cr_model_destroy(m);
}

/* The rate and the band errors survive a model file; copies keep them. */
static void test_file(void **state)
{
    (void)state;
    const size_t L = 1024;
    const double rate = 44100.0;
    double *h = malloc(L * sizeof *h);
    cabinet(h, L, rate, 6, 21);
    cr_model *m, *m2, *m3;
    assert_int_equal(fit1(h, L, rate, CR_WEIGHT_OCTAVE, 6, 0, &m), CR_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/weighted.safetensors", tu_tmpdir());
    assert_int_equal(cr_model_save(m, path), CR_OK);
    assert_int_equal(cr_model_load(&m2, path), CR_OK);
    assert_int_equal(cr_model_copy(m2, &m3), CR_OK);
    cr_model_view a, b;
    cr_model_get_view(m, &a);
    cr_model_get_view(m3, &b);
    assert_true(b.rate == rate);
    assert_true(a.record[0].band_db_max == b.record[0].band_db_max);
    assert_true(a.record[0].band_db_rms == b.record[0].band_db_rms);
    assert_true(a.record[0].band_worst_hz == b.record[0].band_worst_hz);
    cr_model_destroy(m);
    cr_model_destroy(m2);
    cr_model_destroy(m3);
    unlink(path);
    free(h);
}

/* cr_kernel_trim on a response with known silence and noise floor. */
static void test_trim(void **state)
{
    (void)state;
    const size_t L = 20000, lead = 1500, C = 2;
    double *h = calloc(C * L, sizeof *h);
    uint64_t s = 3;
    /* -90 dB noise everywhere, a decay of 60 dB per 4000 samples from
     * sample lead (channel 1 starts 200 samples later, half as loud) */
    for (size_t c = 0; c < C; c++)
        for (size_t k = 0; k < L; k++) {
            double x = 3e-5 * tu_normal(&s);
            size_t k0 = lead + 200 * c;
            if (k >= k0) x += (c ? 0.5 : 1.0) * tu_normal(&s) * pow(10.0, -3.0 * (double)(k - k0) / 4000.0);
            h[c * L + k] = x;
        }
    size_t first, end;
    assert_int_equal(cr_kernel_trim(h, C, L, -60.0, 64, &first, &end), CR_OK);
    print_message("trim -60 dB: [%zu, %zu)\n", first, end);
    /* the envelope reaches the onset half a window early */
    assert_true(first >= lead - 33 && first <= lead);
    /* the envelope of channel 0 (rms 10^(-3k/4000), peak |h| about 4)
     * reaches -60 dB re the peak at k = 4000 log10(4e3) / 3 ~ 4800 .. 3200
     * for a peak between 2.5 and 5; the floor (-90 dB rms) is far below */
    assert_true(end > lead + 3000 && end < lead + 5000);
    /* a threshold below the noise floor: nothing is cut at the end */
    assert_int_equal(cr_kernel_trim(h, C, L, -110.0, 64, &first, &end), CR_OK);
    assert_true(end == L);
    assert_int_equal(cr_kernel_trim(h, C, L, 3.0, 64, &first, &end), CR_EINVAL);
    assert_int_equal(cr_kernel_trim(h, C, L, -60.0, 0, &first, &end), CR_EINVAL);
    memset(h, 0, C * L * sizeof *h);
    assert_int_equal(cr_kernel_trim(h, C, L, -60.0, 64, &first, &end), CR_EINVAL);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bands),
        cmocka_unit_test(test_band_errors_exact),
        cmocka_unit_test(test_gradient),
        cmocka_unit_test(test_weighted_beats_unweighted),
        cmocka_unit_test(test_tol_db),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_trim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
