/* Model object, errors, modal <-> polynomial, .safetensors file. */
#include "config.h" /* feature macros before any system header */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "convrec.h"
#include "core/core.h"
#include "fit/fit.h"
#include "testutil.h"

#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) /* uniform [0, 1) */
{
    return 0.5 * (tu_uniform(&rng_state) + 1.0);
}

static double rho_lo = 0.3; /* radii drawn in rmax * [rho_lo, 1) */

/* Random stable model: C channels, per channel npair pairs and nreal real
 * modes, |lambda| <= rmax. */
static cr_model *random_model(size_t C, size_t npair, size_t nreal, double rmax)
{
    size_t n = npair + nreal;
    cr_model *m;
    assert_int_equal(cr_model_create(&m, C, n + 1), CR_OK);
    unsigned char kind[64];
    double pr[64], pi[64], rr[64], ri[64];
    for (size_t c = 0; c < C; c++) {
        for (size_t j = 0; j < n; j++) {
            double rho = rmax * (rho_lo + (1 - rho_lo) * urand()), th = M_PI * urand();
            kind[j] = j < npair ? CR_MODE_PAIR : CR_MODE_REAL;
            if (j < npair) {
                pr[j] = rho * cos(th);
                pi[j] = rho * sin(th) * (urand() < 0.5 ? -1 : 1); /* either sign */
                rr[j] = urand() - 0.5;
                ri[j] = urand() - 0.5;
            } else {
                pr[j] = rho * (urand() < 0.5 ? -1 : 1);
                pi[j] = 0;
                rr[j] = urand() - 0.5;
                ri[j] = 0;
            }
        }
        assert_int_equal(cr_model_set_channel(m, c, n, kind, pr, pi, rr, ri, urand() - 0.5),
                         CR_OK);
    }
    return m;
}

/* Independent reference: long double complex power recurrence. */
static void ref_kernel(const cr_model *m, size_t c, size_t L, long double *out)
{
    cr_model_view v;
    cr_model_get_view(m, &v);
    for (size_t k = 0; k < L; k++) out[k] = 0;
    out[0] = v.d[c];
    for (size_t j = 0; j < v.M; j++) {
        size_t i = c * v.M + j;
        if (!v.kind[i]) continue;
        long double complex lam = v.pole_re[i] + I * (long double)v.pole_im[i];
        long double complex p = v.res_re[i] + I * (long double)v.res_im[i];
        long double w = v.kind[i] == CR_MODE_PAIR ? 2 : 1;
        for (size_t k = 1; k < L; k++) {
            out[k] += w * creall(p);
            p *= lam;
        }
    }
}

static void test_create_validate(void **st)
{
    (void)st;
    cr_model *m = NULL;
    assert_int_equal(cr_model_create(NULL, 1, 1), CR_EINVAL);
    assert_int_equal(cr_model_create(&m, 0, 1), CR_EINVAL);
    assert_int_equal(cr_model_create(&m, SIZE_MAX / 2, 4), CR_EOVERFLOW);
    assert_int_equal(cr_model_create(&m, 2, 3), CR_OK);
    unsigned char k[3] = {CR_MODE_PAIR, CR_MODE_REAL, CR_MODE_REAL};
    double pr[3] = {0.5, 0.2, -0.3}, pi[3] = {-0.4, 0, 0}, rr[3] = {1, 2, 3}, ri[3] = {0.5, 0, 0};
    assert_int_equal(cr_model_set_channel(m, 2, 3, k, pr, pi, rr, ri, 0), CR_EINVAL);
    assert_int_equal(cr_model_set_channel(m, 0, 4, k, pr, pi, rr, ri, 0), CR_EINVAL);
    assert_int_equal(cr_model_set_channel(m, 0, 3, k, pr, pi, rr, ri, NAN), CR_ENONFINITE);
    assert_int_equal(cr_model_set_channel(m, 0, 3, NULL, pr, pi, rr, ri, 0), CR_EINVAL);
    unsigned char kb[3] = {3, 1, 1};
    assert_int_equal(cr_model_set_channel(m, 0, 3, kb, pr, pi, rr, ri, 0), CR_EINVAL);
    double pib[3] = {0, 0, 0}; /* pair with a real pole */
    assert_int_equal(cr_model_set_channel(m, 0, 3, k, pr, pib, rr, ri, 0), CR_EINVAL);
    double rib[3] = {0.5, 0.1, 0}; /* real mode with an imaginary residue */
    assert_int_equal(cr_model_set_channel(m, 0, 3, k, pr, pi, rr, rib, 0), CR_EINVAL);
    double prn[3] = {0.5, INFINITY, 0};
    assert_int_equal(cr_model_set_channel(m, 0, 3, k, prn, pi, rr, ri, 0), CR_ENONFINITE);
    assert_int_equal(cr_model_set_channel(m, 0, 3, k, pr, pi, rr, ri, 0.25), CR_OK);
    /* pairs normalised to pole_im > 0, residue conjugated too */
    cr_model_view v;
    assert_int_equal(cr_model_get_view(m, &v), CR_OK);
    assert_true(v.pole_im[0] == 0.4 && v.res_im[0] == -0.5 && v.res_re[0] == 1);
    assert_int_equal(cr_model_order(m, 0), 4);
    assert_int_equal(cr_model_order(m, 1), 0);
    assert_int_equal(v.record[0].order, 4);
    assert_true(isnan(v.record[0].err_window));
    assert_true(fabs(cr_model_spectral_radius(m, 0) - hypot(0.5, 0.4)) < 1e-15);
    assert_true(cr_model_spectral_radius(m, 1) == 0.0);
    assert_int_equal(cr_model_check_stable(m, 0.0), CR_OK);
    assert_int_equal(cr_model_check_stable(m, 0.5), CR_EUNSTABLE);
    assert_non_null(strstr(cr_error_detail(), "channel 0 mode 0"));
    assert_int_equal(cr_model_check_stable(m, -1), CR_EINVAL);
    /* copy is deep and equal */
    cr_model *m2;
    assert_int_equal(cr_model_copy(m, &m2), CR_OK);
    cr_model_view v2;
    cr_model_get_view(m2, &v2);
    assert_memory_equal(v.pole_re, v2.pole_re, 6 * sizeof(double));
    assert_true(v.pole_re != v2.pole_re);
    cr_model_destroy(m2);
    /* an unstable pole: set_channel accepts, check_stable refuses */
    double pu[3] = {1.0, 0.2, -0.3};
    assert_int_equal(cr_model_set_channel(m, 1, 3, k, pu, pi, rr, ri, 0), CR_OK);
    assert_int_equal(cr_model_check_stable(m, 0.0), CR_EUNSTABLE);
    assert_non_null(strstr(cr_error_detail(), "channel 1"));
    cr_model_destroy(m);
    cr_model_destroy(NULL);
}

static void test_kernel_reference(void **st)
{
    (void)st;
    const size_t C = 3, L = 3000;
    cr_model *m = random_model(C, 4, 3, 0.999);
    double *out = malloc(C * L * sizeof(double));
    long double *ref = malloc(L * sizeof(long double));
    assert_int_equal(cr_model_kernel(m, L, out), CR_OK);
    for (size_t c = 0; c < C; c++) {
        ref_kernel(m, c, L, ref);
        long double e2 = 0, n2 = 0;
        for (size_t k = 0; k < L; k++) {
            long double e = out[c * L + k] - ref[k];
            e2 += e * e;
            n2 += ref[k] * ref[k];
        }
        double rel = (double)sqrtl(e2 / n2);
        assert_true(rel < 1e-13);
    }
    assert_int_equal(cr_model_kernel(m, 0, out), CR_EINVAL);
    assert_int_equal(cr_model_kernel(NULL, L, out), CR_EINVAL);
    assert_int_equal(cr_model_kernel(m, SIZE_MAX / 2, out), CR_EOVERFLOW);
    free(out);
    free(ref);
    cr_model_destroy(m);
}

/* The cancellation measure (closed-form sums by doubling) against direct
 * long double sums, for pairs near the real axis (where the imaginary
 * columns are O(angle) and a difference of two sums would cancel), near
 * the unit circle and in between. */
static void test_cancellation_reference(void **st)
{
    (void)st;
    const size_t L = 2048;
    const double ang[] = { 1e-9, 1e-4, 0.03, 1.0, 3.1 };
    const double rad[] = { 0.5, 0.99, 0.999999 };
    double *work = malloc(L * sizeof *work);
    assert_non_null(work);
    cr__modal m;
    assert_int_equal(cr__modal_alloc(&m, 3), CR_OK);
    for (size_t a = 0; a < sizeof ang / sizeof *ang; a++)
        for (size_t r = 0; r < sizeof rad / sizeof *rad; r++) {
            m.n = 2;
            m.d = 0.3;
            m.kind[0] = CR_MODE_PAIR;
            m.pole_re[0] = rad[r] * cos(ang[a]);
            m.pole_im[0] = rad[r] * sin(ang[a]);
            m.res_re[0] = 0.7;
            m.res_im[0] = -1.3e3; /* a large imaginary part: its column counts */
            m.kind[1] = CR_MODE_REAL;
            m.pole_re[1] = 0.8;
            m.pole_im[1] = m.res_im[1] = 0.0;
            m.res_re[1] = -0.4;
            long double l1 = 0, n2 = 0;
            long double complex *hk = calloc(L, sizeof *hk);
            assert_non_null(hk);
            for (size_t j = 0; j < m.n; j++) {
                long double w = m.kind[j] == CR_MODE_PAIR ? 2 : 1;
                long double complex lam = m.pole_re[j] + I * (long double)m.pole_im[j];
                long double complex be = w * (m.res_re[j] + I * (long double)m.res_im[j]);
                long double complex z = 1;
                long double sr = 0, si = 0;
                for (size_t k = 0; k + 1 < L; k++) {
                    sr += creall(z) * creall(z);
                    si += cimagl(z) * cimagl(z);
                    hk[k + 1] += creall(be * z);
                    z *= lam;
                }
                l1 += fabsl(creall(be)) * sqrtl(sr) + fabsl(cimagl(be)) * sqrtl(si);
            }
            for (size_t k = 1; k < L; k++) n2 += creall(hk[k]) * creall(hk[k]);
            free(hk);
            double want = (double)(l1 / sqrtl(n2));
            double got = cr__modal_cancellation(&m, L, work);
            assert_true(fabs(got - want) <= 1e-9 * want);
        }
    cr__modal_free(&m);
    free(work);
}

/* Errors against brute force: the tail summed over many samples, H-inf by
 * direct DTFT sums on the same grid and on a finer one. */
static void test_errors_bruteforce(void **st)
{
    (void)st;
    const size_t L = 200, K = 20000; /* 0.999^40400 ~ 3e-18 */
    long double *ref = malloc((L + K) * sizeof(long double));
    double *h = malloc(L * sizeof(double));
    cr_model *m = NULL;
    for (size_t c = 0; c < 4; c++) {
        /* channels 0-1: slow poles, a large tail; 2-3: fast poles, H-inf
         * checked by direct DTFT sums */
        if (c == 0 || c == 2) {
            cr_model_destroy(m);
            rho_lo = c == 0 ? 0.98 : 0.3;
            m = random_model(2, 3, 2, c == 0 ? 0.999 : 0.95);
            rho_lo = 0.3;
        }
        size_t cm = c % 2, KK = c < 2 ? K : 4000;
        ref_kernel(m, cm, L + KK, ref);
        double noise = c < 2 ? 1e-4 : 1e-2;
        for (size_t k = 0; k < L; k++) h[k] = (double)ref[k] + noise * (urand() - 0.5);
        cr_fit_record rec;
        rec.sigma_next = 123.0;
        assert_int_equal(cr_model_errors(m, cm, h, L, &rec), CR_OK);
        long double e2 = 0, n2 = 0, t2 = 0;
        for (size_t k = 0; k < L; k++) {
            e2 += (h[k] - ref[k]) * (h[k] - ref[k]);
            n2 += (long double)h[k] * h[k];
        }
        for (size_t k = L; k < L + KK; k++) t2 += ref[k] * ref[k];
        if (c < 2) assert_true(t2 > 0.1 * e2); /* the tail matters here */
        double ew = (double)sqrtl(e2 / n2), ei = (double)sqrtl((e2 + t2) / n2);
        /* the model kernel is exact to rounding, about eps ||h|| in norm: at
         * ew ~ 1e-4 that alone is ~1e-12 relative, so allow 1e-15 absolute
         * (in units of ||h||) besides 1e-12 relative */
        assert_true(fabs(rec.err_window - ew) <= 1e-12 * ew + 1e-15);
        assert_true(fabs(rec.err_infinite - ei) <= 1e-12 * ei);
        assert_true(rec.err_infinite >= rec.err_window);
        assert_true(fabs(rec.h_norm - (double)sqrtl(n2)) <= 1e-14 * rec.h_norm);
        assert_int_equal(rec.length, L);
        assert_int_equal(rec.order, 8);
        assert_true(rec.sigma_next == 123.0); /* untouched */
        if (c < 2) continue;
        /* H-inf: direct DTFT sums of h and of the long model kernel */
        size_t grids[2] = {1600, 16 * L}; /* 1600 = good_size(8L) */
        double best[2];
        for (int g = 0; g < 2; g++) {
            size_t n = grids[g];
            double mx = 0;
            for (size_t f = 0; f <= n / 2; f++) {
                long double complex acc = 0, z = 1;
                long double w = 2 * 3.14159265358979323846264338327950288L * f / n;
                long double complex step = cexpl(-I * w);
                for (size_t k = 0; k < L + KK; k++) {
                    long double hk = (k < L ? h[k] : 0) - ref[k];
                    acc += hk * z;
                    z *= step;
                }
                if (cabsl(acc) > mx) mx = (double)cabsl(acc);
            }
            best[g] = mx;
        }
        assert_true(fabs(rec.err_hinf - best[0]) <= 1e-9 * best[0]);
        assert_true(rec.err_hinf <= best[1] * (1 + 1e-9));
        assert_true(rec.err_hinf >= 0.9 * best[1]);
    }
    /* through the cr__modal interface of the fits */
    cr_model_view v;
    cr_model_get_view(m, &v);
    cr__modal mm = {v.M,
                    v.M,
                    (unsigned char *)v.kind + v.M,
                    (double *)v.pole_re + v.M,
                    (double *)v.pole_im + v.M,
                    (double *)v.res_re + v.M,
                    (double *)v.res_im + v.M,
                    v.d[1]};
    cr_fit_record r1, r2;
    assert_int_equal(cr__modal_errors(&mm, h, L, &r1), CR_OK);
    assert_int_equal(cr_model_errors(m, 1, h, L, &r2), CR_OK);
    assert_true(r1.err_window == r2.err_window && r1.err_infinite == r2.err_infinite &&
                r1.err_hinf == r2.err_hinf);
    /* bad input */
    h[3] = NAN;
    assert_int_equal(cr_model_errors(m, 0, h, L, &r1), CR_ENONFINITE);
    assert_int_equal(cr_model_errors(m, 5, h, L, &r1), CR_EINVAL);
    assert_int_equal(cr_model_errors(m, 0, h, 0, &r1), CR_EINVAL);
    /* zero kernel, d-only model: errors are absolute and 0 */
    cr_model *z;
    assert_int_equal(cr_model_create(&z, 1, 0), CR_OK);
    memset(h, 0, L * sizeof(double));
    assert_int_equal(cr_model_errors(z, 0, h, L, &r1), CR_OK);
    assert_true(r1.err_window == 0 && r1.err_infinite == 0 && r1.err_hinf == 0 &&
                r1.h_norm == 0);
    cr_model_destroy(z);
    free(ref);
    free(h);
    cr_model_destroy(m);
}

static void kernels_close(const cr_model *a, const cr_model *b, size_t c, double tol)
{
    const size_t L = 300;
    cr_model_view va, vb;
    cr_model_get_view(a, &va);
    cr_model_get_view(b, &vb);
    double *ka = malloc(va.C * L * sizeof(double)), *kb = malloc(vb.C * L * sizeof(double));
    assert_int_equal(cr_model_kernel(a, L, ka), CR_OK);
    assert_int_equal(cr_model_kernel(b, L, kb), CR_OK);
    double e2 = 0, n2 = 0;
    for (size_t k = 0; k < L; k++) {
        double e = ka[c * L + k] - kb[c * L + k];
        e2 += e * e;
        n2 += ka[c * L + k] * ka[c * L + k];
    }
    assert_true(sqrt(e2 / n2) <= tol);
    free(ka);
    free(kb);
}

static void test_poly(void **st)
{
    (void)st;
    /* closed forms: r z^-1/(1 - lambda z^-1) and the MATH.md pair section */
    cr_model *m;
    assert_int_equal(cr_model_create(&m, 2, 4), CR_OK);
    unsigned char k1 = CR_MODE_REAL, k2 = CR_MODE_PAIR;
    double pr = 0.5, pi = 0, rr = 2, ri = 0;
    assert_int_equal(cr_model_set_channel(m, 0, 1, &k1, &pr, &pi, &rr, &ri, 0.5), CR_OK);
    double b[16], a[17], d, e;
    assert_int_equal(cr_model_to_poly(m, 0, b, a, &d, &e), CR_OK);
    assert_true(b[0] == 2 && a[0] == 1 && a[1] == -0.5 && d == 0.5 && e < 1e-14);
    double qr = 0.6, qi = 0.7, sr = 0.3, si = -0.2;
    assert_int_equal(cr_model_set_channel(m, 1, 1, &k2, &qr, &qi, &sr, &si, 0), CR_OK);
    assert_int_equal(cr_model_to_poly(m, 1, b, a, NULL, NULL), CR_OK);
    assert_true(fabs(b[0] - 2 * sr) < 1e-15 && fabs(b[1] + 2 * (sr * qr + si * qi)) < 1e-15);
    assert_true(fabs(a[1] + 2 * qr) < 1e-15 && fabs(a[2] - (qr * qr + qi * qi)) < 1e-15);
    cr_model_destroy(m);

    /* round trips at low order */
    for (int trial = 0; trial < 5; trial++) {
        cr_model *r = random_model(1, 3, 2, 0.9), *q;
        size_t N = cr_model_order(r, 0);
        assert_int_equal(N, 8);
        assert_int_equal(cr_model_to_poly(r, 0, b, a, &d, &e), CR_OK);
        assert_true(e < 1e-10);
        assert_int_equal(cr_model_create(&q, 1, N), CR_OK);
        assert_int_equal(cr_model_set_channel_poly(q, 0, N, b, a, d, &e), CR_OK);
        assert_true(e < 1e-10);
        assert_int_equal(cr_model_order(q, 0), N);
        kernels_close(r, q, 0, 1e-10);
        cr_model_destroy(r);
        cr_model_destroy(q);
    }
    /* a repeated root: (1 - 0.5 z^-1)^2 cannot be expressed in modal form */
    cr_model *q;
    assert_int_equal(cr_model_create(&q, 1, 4), CR_OK);
    double b2[2] = {1, 0}, a2[3] = {1, -1.0, 0.25};
    cr_status s = cr_model_set_channel_poly(q, 0, 2, b2, a2, 0, &e);
    assert_int_equal(s, CR_ESINGULAR);
    /* bad arguments */
    double an[3] = {2, -1, 0.25};
    assert_int_equal(cr_model_set_channel_poly(q, 0, 2, b2, an, 0, &e), CR_EINVAL);
    assert_int_equal(cr_model_set_channel_poly(q, 0, 5, b2, a2, 0, &e), CR_EINVAL);
    double anan[3] = {1, NAN, 0.25};
    assert_int_equal(cr_model_set_channel_poly(q, 0, 2, b2, anan, 0, &e), CR_ENONFINITE);
    cr_model_destroy(q);

    /* high order with clustered poles: the loss is measured and flagged */
    const size_t P = 30;
    cr_model *h;
    assert_int_equal(cr_model_create(&h, 1, P), CR_OK);
    unsigned char kk[30];
    double hr[30], hi[30], gr[30], gi[30];
    for (size_t j = 0; j < P; j++) {
        kk[j] = CR_MODE_PAIR;
        hr[j] = 0.99 * cos(0.01 + 0.002 * j);
        hi[j] = 0.99 * sin(0.01 + 0.002 * j);
        gr[j] = urand();
        gi[j] = urand();
    }
    assert_int_equal(cr_model_set_channel(h, 0, P, kk, hr, hi, gr, gi, 0), CR_OK);
    double bb[60], aa[61];
    s = cr_model_to_poly(h, 0, bb, aa, NULL, &e);
    assert_true((s == CR_OK) == (e <= CR_POLY_ACCURACY));
    cr_model *h2;
    assert_int_equal(cr_model_create(&h2, 1, 60), CR_OK);
    s = cr_model_set_channel_poly(h2, 0, 60, bb, aa, 0, &e);
    assert_true(s == CR_ESINGULAR || s == CR_OK);
    assert_true((s == CR_OK) == (e <= CR_POLY_ACCURACY));
    assert_int_equal(s, CR_ESINGULAR); /* order 60, clustered: expect loss */
    cr_model_destroy(h);
    cr_model_destroy(h2);
}

/* ---------------------------------------------------------------------
 * File
 * --------------------------------------------------------------------- */

static char tmpdir[256];

static int setup_dir(void **st)
{
    (void)st;
    snprintf(tmpdir, sizeof tmpdir, "%s", tu_tmpdir());
    return strcmp(tmpdir, "/tmp") != 0 ? 0 : -1;
}

static int teardown_dir(void **st)
{
    (void)st;
    return tu_rmtree(tmpdir);
}

static unsigned char *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *p, const unsigned char *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void assert_models_equal(const cr_model *a, const cr_model *b)
{
    cr_model_view va, vb;
    cr_model_get_view(a, &va);
    cr_model_get_view(b, &vb);
    assert_int_equal(va.C, vb.C);
    assert_int_equal(va.M, vb.M);
    size_t n = va.C * va.M;
    assert_memory_equal(va.kind, vb.kind, n);
    assert_memory_equal(va.pole_re, vb.pole_re, n * 8);
    assert_memory_equal(va.pole_im, vb.pole_im, n * 8);
    assert_memory_equal(va.res_re, vb.res_re, n * 8);
    assert_memory_equal(va.res_im, vb.res_im, n * 8);
    assert_memory_equal(va.d, vb.d, va.C * 8);
    /* records: bitwise (NaN included) */
    assert_memory_equal(va.record, vb.record, va.C * sizeof(cr_fit_record));
    assert_int_equal(va.method, vb.method);
    assert_int_equal(va.horizon, vb.horizon);
}

static void test_roundtrip(void **st)
{
    (void)st;
    char p[300];
    snprintf(p, sizeof p, "%s/m.safetensors", tmpdir);
    cr_model *m = random_model(5, 3, 2, 0.99), *l;
    double h[64];
    for (int k = 0; k < 64; k++) h[k] = exp(-0.1 * k) * cos(0.3 * k);
    cr_fit_record rec;
    memset(&rec, 0, sizeof rec);
    assert_int_equal(cr_model_errors(m, 2, h, 64, &rec), CR_OK);
    rec.sigma_next = 0.125;
    rec.bt_bound = 0.5;
    cr_model_set_record(m, 2, &rec);
    cr_model_set_info(m, CR_METHOD_BT, CR_HORIZON_INFINITE);
    /* channel 4 has fewer modes, channel 3 none */
    assert_int_equal(cr_model_set_channel(m, 3, 0, NULL, NULL, NULL, NULL, NULL, 1.5), CR_OK);
    assert_int_equal(cr_model_save(m, p), CR_OK);
    assert_int_equal(cr_model_load(&l, p), CR_OK);
    assert_models_equal(m, l);
    cr_model_destroy(l);
    /* M = 0 (feedthrough only) */
    cr_model *z;
    assert_int_equal(cr_model_create(&z, 2, 0), CR_OK);
    assert_int_equal(cr_model_save(z, p), CR_OK);
    assert_int_equal(cr_model_load(&l, p), CR_OK);
    assert_models_equal(z, l);
    cr_model_destroy(l);
    cr_model_destroy(z);
    /* no temporary files left in the folder */
    DIR *dd = opendir(tmpdir);
    struct dirent *de;
    int count = 0;
    while ((de = readdir(dd)))
        if (de->d_name[0] != '.') count++;
    closedir(dd);
    assert_int_equal(count, 1);
    /* header is 8-aligned and the file is parseable JSON text */
    size_t n;
    unsigned char *b = slurp(p, &n);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)b[i] << (8 * i);
    assert_int_equal(hl % 8, 0);
    assert_true(b[8] == '{');
    free(b);
    cr_model_destroy(m);
    assert_int_equal(cr_model_load(&l, "/nonexistent/x.safetensors"), CR_EIO);
    assert_null(l);
    assert_int_equal(cr_model_save(NULL, p), CR_EINVAL);
    assert_int_equal(cr_model_load_ex(&l, p, 0x80), CR_EINVAL);
}

/* Replace the first occurrence of `from` with `to` (same length) in b. */
static int patch(unsigned char *b, size_t n, const char *from, const char *to)
{
    size_t fl = strlen(from);
    assert_int_equal(fl, strlen(to));
    for (size_t i = 0; i + fl <= n; i++)
        if (memcmp(b + i, from, fl) == 0) {
            memcpy(b + i, to, fl);
            return 1;
        }
    return 0;
}

static size_t data_start(const unsigned char *b)
{
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)b[i] << (8 * i);
    return 8 + (size_t)hl;
}

static void put_double(unsigned char *p, double x) { memcpy(p, &x, 8); } /* host is LE */

static void expect_load(const char *p, const unsigned char *b, size_t n, cr_status want,
                        const char *detail_part)
{
    cr_model *l = (cr_model *)1;
    spit(p, b, n);
    cr_status s = cr_model_load(&l, p);
    if (s != want || (detail_part && !strstr(cr_error_detail(), detail_part)))
        fail_msg("load: got %d (%s), want %d with '%s'", s, cr_error_detail(), want,
                 detail_part ? detail_part : "");
    assert_null(l);
}

static void test_corruptions(void **st)
{
    (void)st;
    char good[300], p[300];
    snprintf(good, sizeof good, "%s/good.safetensors", tmpdir);
    snprintf(p, sizeof p, "%s/bad.safetensors", tmpdir);
    /* 3 channels, M = 4: pair, pair, real, unused */
    cr_model *m = random_model(3, 2, 1, 0.9);
    assert_int_equal(cr_model_save(m, good), CR_OK);
    cr_model_destroy(m);
    size_t n;
    unsigned char *orig = slurp(good, &n), *b = malloc(n + 64);
    size_t ds = data_start(orig);
#define FRESH() memcpy(b, orig, n)

    FRESH();
    expect_load(p, b, 5, CR_EFORMAT, "too short");
    expect_load(p, b, n - 5, CR_EFORMAT, "truncated");
    expect_load(p, b, ds + 3, CR_EFORMAT, NULL);
    FRESH();
    b[n] = 0;
    expect_load(p, b, n + 1, CR_EFORMAT, "trailing");
    /* header length */
    FRESH();
    put_double(b, 0);
    b[0] = 0xff;
    b[1] = 0xff;
    b[5] = 0x01;
    expect_load(p, b, n, CR_EFORMAT, "header length");
    FRESH();
    b[0] = (unsigned char)(ds - 8 + 8); /* header runs into the data */
    expect_load(p, b, n, CR_EFORMAT, NULL);
    /* JSON */
    FRESH();
    b[8] = 'x';
    expect_load(p, b, n, CR_EFORMAT, "JSON");
    FRESH();
    patch(b, n, "\"poles\":{", "\"poles\":[");
    expect_load(p, b, n, CR_EFORMAT, "JSON");
    /* dtype, shape */
    FRESH();
    assert_true(patch(b, n, "\"dtype\":\"U8\"", "\"dtype\":\"I8\""));
    expect_load(p, b, n, CR_EDTYPE, "kinds");
    FRESH();
    assert_true(patch(b, n, "\"d\":{\"dtype\":\"F64\",\"shape\":[3]",
                      "\"d\":{\"dtype\":\"F64\",\"shape\":[4]"));
    expect_load(p, b, n, CR_ESHAPE, "'d'");
    FRESH();
    assert_true(patch(b, n, "\"shape\":[3,4,2]", "\"shape\":[3,8,1]"));
    expect_load(p, b, n, CR_ESHAPE, "poles");
    /* offsets: poles are [0,192], residues [192,384] */
    FRESH();
    assert_true(patch(b, n, "[192,384]", "[184,376]"));
    expect_load(p, b, n, CR_EFORMAT, "overlap");
    FRESH();
    assert_true(patch(b, n, "[192,384]", "[192,385]"));
    expect_load(p, b, n, CR_EFORMAT, "data_offsets");
    FRESH();
    assert_true(patch(b, n, "[0,192]", "[1,193]"));
    expect_load(p, b, n, CR_EFORMAT, NULL);
    /* tensor names */
    FRESH();
    assert_true(patch(b, n, "\"length\"", "\"lengtx\""));
    expect_load(p, b, n, CR_EFORMAT, "unexpected tensor 'lengtx'");
    FRESH();
    assert_true(patch(b, n, "\"orders\"", "\"length\""));
    expect_load(p, b, n, CR_EFORMAT, "duplicated");
    FRESH();
    assert_true(patch(b, n, "\"data_offsets\"", "\"data_offsetz\""));
    expect_load(p, b, n, CR_EFORMAT, "data_offsetz");
    /* metadata */
    FRESH();
    assert_true(patch(b, n, "convrec-modal", "convrec-nodal"));
    expect_load(p, b, n, CR_EFORMAT, "format");
    FRESH();
    assert_true(patch(b, n, "\"format_version\":\"1\"", "\"format_version\":\"9\""));
    expect_load(p, b, n, CR_EUNSUPPORTED, "format_version");
    /* values: poles at data + 0 (channel 0 mode 0 re, im), kinds last */
    FRESH();
    put_double(b + ds, NAN);
    expect_load(p, b, n, CR_ENONFINITE, "channel 0 mode 0");
    FRESH();
    put_double(b + ds + 16, 1.5); /* channel 0 mode 1 */
    expect_load(p, b, n, CR_EUNSTABLE, "channel 0 mode 1");
    {
        cr_model *l;
        assert_int_equal(cr_model_load_ex(&l, p, CR_LOAD_ALLOW_UNSTABLE), CR_OK);
        assert_true(cr_model_spectral_radius(l, 0) > 1);
        cr_model_destroy(l);
    }
    FRESH();
    put_double(b + ds + 8, -0.25); /* pair stored with pole_im < 0 */
    expect_load(p, b, n, CR_EFORMAT, "pole_im");
    FRESH();
    b[n - 12] = 7; /* kinds are the last 12 bytes */
    expect_load(p, b, n, CR_EFORMAT, "kind 7");
    FRESH();
    b[n - 12 + 3] = CR_MODE_REAL; /* unused slot becomes a real mode: orders mismatch */
    expect_load(p, b, n, CR_EFORMAT, "orders");
    FRESH();
    b[n - 12] = CR_MODE_REAL; /* pair relabelled real: im parts nonzero */
    expect_load(p, b, n, CR_EFORMAT, "imaginary");

    /* random byte flips never crash, and a flip is detected or harmless */
    for (int t = 0; t < 300; t++) {
        FRESH();
        for (int f = 0; f < 3; f++) b[(size_t)(urand() * n)] ^= (unsigned char)(1 + urand() * 255);
        spit(p, b, n);
        cr_model *l = NULL;
        if (cr_model_load(&l, p) == CR_OK) cr_model_destroy(l);
        else assert_null(l);
    }
    free(b);
    free(orig);
#undef FRESH
}

static void test_atomic_save(void **st)
{
    (void)st;
    cr_model *m = random_model(2, 1, 1, 0.5);
    char p[300], sub[300];
    /* target is a directory: the rename fails, the temporary is removed */
    snprintf(sub, sizeof sub, "%s/adir", tmpdir);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(cr_model_save(m, sub), CR_EIO);
    /* folder does not exist */
    snprintf(p, sizeof p, "%s/nowhere/m.safetensors", tmpdir);
    assert_int_equal(cr_model_save(m, p), CR_EIO);
    /* read-only folder (root ignores permissions: only checked otherwise) */
    snprintf(p, sizeof p, "%s/adir/m.safetensors", tmpdir);
    if (geteuid() != 0) {
        assert_int_equal(chmod(sub, 0555), 0);
        assert_int_equal(cr_model_save(m, p), CR_EIO);
        chmod(sub, 0755);
    }
    DIR *dd = opendir(tmpdir);
    struct dirent *de;
    while ((de = readdir(dd))) assert_null(strstr(de->d_name, ".tmp."));
    closedir(dd);
    dd = opendir(sub);
    while ((de = readdir(dd))) assert_true(de->d_name[0] == '.');
    closedir(dd);
    rmdir(sub);
    /* overwriting an existing model replaces it whole */
    snprintf(p, sizeof p, "%s/over.safetensors", tmpdir);
    spit(p, (const unsigned char *)"junk", 4);
    assert_int_equal(cr_model_save(m, p), CR_OK);
    cr_model *l;
    assert_int_equal(cr_model_load(&l, p), CR_OK);
    assert_models_equal(m, l);
    cr_model_destroy(l);
    cr_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_validate),
        cmocka_unit_test(test_kernel_reference),
        cmocka_unit_test(test_cancellation_reference),
        cmocka_unit_test(test_errors_bruteforce),
        cmocka_unit_test(test_poly),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_corruptions),
        cmocka_unit_test(test_atomic_save),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
