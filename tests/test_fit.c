/* Fits (fit.c, fit_bt.c, fit_pencil.c): exact recovery of modal kernels,
 * the balanced-truncation certificate, the trained S4D kernels, stability
 * of every method, order selection for a tolerance, bad input. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <complex.h>

#include "fitutil.h"
#include "testutil.h"

/* h[0] = d, h[k] = sum w Re(r lambda^(k-1)); order n = real dimension:
 * n/2 pairs, plus a real mode when n is odd. |lambda| in [0.5, 0.98]. */
static void modal_kernel(double *h, size_t L, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    memset(h, 0, L * sizeof *h);
    h[0] = tu_uniform(&s);
    for (size_t m = 0; m + 1 < n + 1; m += 2) {
        int pair = m + 1 < n;
        double rho = 0.5 + 0.48 * (tu_uniform(&s) + 1) * 0.5;
        double th = pair ? 0.1 + 2.9 * (tu_uniform(&s) + 1) * 0.5 : 0.0;
        if (!pair && tu_uniform(&s) < 0) th = 3.141592653589793;
        double complex lam = rho * cexp(I * th);
        double complex r = tu_uniform(&s) + (pair ? I * tu_uniform(&s) : 0);
        double w = pair ? 2.0 : 1.0;
        double complex p = 1;
        for (size_t k = 1; k < L; k++) {
            h[k] += w * creal(r * p);
            p *= lam;
        }
    }
}

static double model_rel_window(const cr_model *m, size_t c, const double *h, size_t L)
{
    double *g = malloc(L * sizeof *g);
    cr_model_view v;
    assert_int_equal(cr_model_get_view(m, &v), CR_OK);
    double *all = malloc(v.C * L * sizeof *all);
    assert_int_equal(cr_model_kernel(m, L, all), CR_OK);
    memcpy(g, all + c * L, L * sizeof *g);
    double e = tu_rel_l2(g, h, L);
    free(all);
    free(g);
    return e;
}

static void test_modal_basics(void **state)
{
    (void)state;
    cr__modal m;
    assert_int_equal(cr__modal_alloc(&m, 4), CR_OK);
    assert_int_equal(m.cap, 4);
    m.n = 3;
    m.kind[0] = CR_MODE_PAIR; m.kind[1] = CR_MODE_REAL; m.kind[2] = CR_MODE_PAIR;
    assert_int_equal(cr__modal_order(&m), 5);
    cr__modal_free(&m);
    assert_null(m.kind);
    cr_fit_options o;
    cr_fit_options_default(&o);
    assert_int_equal(o.method, CR_METHOD_AUTO);
    assert_int_equal(o.horizon, CR_HORIZON_WINDOW);
    assert_int_equal(o.order, 0);
    assert_true(o.margin == 1e-6);
    assert_true(o.tol > 0);
}

/* A kernel that is a sum of n fast-decaying modes (its FIR truncation at
 * L is below rounding) has Hankel rank n: bt at N = n must reproduce it
 * over all k, which also pins down the orientation of A_r (V^T Z V). */
static void test_bt_exact(void **state)
{
    (void)state;
    size_t L = 300;
    double *h = malloc(L * sizeof *h);
    const size_t ns[] = { 1, 2, 3, 6, 9 };
    for (size_t q = 0; q < 5; q++) {
        size_t n = ns[q];
        uint64_t s = 40 + n;
        memset(h, 0, L * sizeof *h);
        h[0] = 0.3;
        for (size_t m = 0; m < n; m += 2) {
            int pair = m + 1 < n;
            double complex lam = (0.3 + 0.4 * (tu_uniform(&s) + 1) * 0.5) *
                                 cexp(I * (pair ? 0.2 + 2.5 * (tu_uniform(&s) + 1) * 0.5 : 0.0));
            double complex r = tu_uniform(&s) + (pair ? I * tu_uniform(&s) : 0), p = 1;
            for (size_t k = 1; k < L; k++) {
                h[k] += (pair ? 2.0 : 1.0) * creal(r * p);
                p *= lam;
            }
        }
        for (int mode = 1; mode <= 2; mode++) {   /* dense and randomized SVD */
            cr__modal m;
            assert_int_equal(cr__modal_alloc(&m, n), CR_OK);
            cr__hsvd sv;
            const cr__hsvd_req req = { n, n, 1, 1e-12, 1e-2,
                                       mode == 1 ? CR__HSVD_DENSE : CR__HSVD_LANCZOS, 0.0 };
            assert_int_equal(cr__hankel_svd(h, L, CR_HORIZON_INFINITE, &req, &sv), CR_OK);
            assert_int_equal(cr__bt_from_svd(h, L, n, 1.0 - 1e-6, &sv, &m), CR_OK);
            cr__hsvd_free(&sv);
            assert_int_equal(cr__modal_order(&m), n);
            assert_true(m.d == 0.3);
            cr_fit_record rec;
            assert_int_equal(cr__modal_errors(&m, h, L, &rec), CR_OK);
            if (rec.err_infinite > 1e-9)
                fprintf(stderr, "bt exact n %zu mode %d: %.3e\n", n, mode, rec.err_infinite);
            assert_true(rec.err_infinite <= 1e-9);
            cr__modal_free(&m);
        }
    }
    free(h);
}

/* sigma_{N+1} <= ||h - hhat||_inf <= 2 sum_{i>N} sigma_i (infinite horizon) */
static void test_bt_certificate(void **state)
{
    (void)state;
    const size_t Ls[] = { 64, 200, 600 };
    for (size_t t = 0; t < 3; t++) {
        size_t L = Ls[t];
        double *h = malloc(L * sizeof *h);
        for (int fam = 0; fam < 2; fam++) {
            uint64_t s = 11 + L + fam;
            if (fam == 0) {
                modal_kernel(h, L, 24, s);           /* decaying modal, truncated at L */
                for (size_t k = 0; k < L; k++) h[k] += 1e-4 * tu_normal(&s);
            } else {
                for (size_t k = 0; k < L; k++)        /* power-law decay */
                    h[k] = tu_normal(&s) / pow(1.0 + (double)k, 1.2);
            }
            size_t r = L - 1;
            double *sig = malloc(r * sizeof *sig);
            cr__hsvd dv;
            const cr__hsvd_req dreq = { r, r, 0, 1e-13, 0.0, CR__HSVD_DENSE, 0.0 };
            assert_int_equal(cr__hankel_svd(h, L, CR_HORIZON_INFINITE, &dreq, &dv), CR_OK);
            assert_int_equal(dv.nsigma, r);
            memcpy(sig, dv.sigma, r * sizeof *sig);
            cr__hsvd_free(&dv);
            const size_t Ns[] = { 2, 5, 8, 16 };
            for (size_t q = 0; q < 4; q++) {
                size_t N = Ns[q];
                cr__modal m;
                assert_int_equal(cr__modal_alloc(&m, N), CR_OK);
                assert_int_equal(tf_fit(cr__fit_bt, h, L, N, CR_HORIZON_INFINITE, 1e-6, &m), CR_OK);
                assert_int_equal(cr__modal_order(&m), N);
                cr_fit_record rec;
                assert_int_equal(cr__modal_errors(&m, h, L, &rec), CR_OK);
                double tail = 0;
                for (size_t i = r; i-- > N;) tail += sig[i];
                /* the H-inf error is measured on a grid: allow 1e-3 below */
                assert_true(rec.err_hinf >= sig[N] * (1 - 1e-3));
                assert_true(rec.err_hinf <= 2 * tail * (1 + 1e-9));
                for (size_t j = 0; j < m.n; j++)
                    assert_true(hypot(m.pole_re[j], m.pole_im[j]) <= 1 - 1e-6 * 0.999);
                cr__modal_free(&m);
            }
            free(sig);
        }
        free(h);
    }
}

/* A sum of n modes is recovered exactly on its window at N = n. */
static void test_exact_recovery(void **state)
{
    (void)state;
    const size_t Ls[] = { 100, 333, 2000 };
    const size_t ns[] = { 1, 2, 5, 8, 13, 16 };
    const cr_method meths[] = { CR_METHOD_PENCIL, CR_METHOD_AUTO };
    for (size_t t = 0; t < 3; t++)
        for (size_t q = 0; q < 6; q++) {
            size_t L = Ls[t], n = ns[q];
            double *h = malloc(L * sizeof *h);
            modal_kernel(h, L, n, 1000 * t + q);
            for (int mm = 0; mm < 2; mm++) {
                cr_fit_options o;
                cr_fit_options_default(&o);
                o.method = meths[mm];
                o.order = n;
                cr_model *model = NULL;
                assert_int_equal(cr_fit(h, 1, L, &o, &model), CR_OK);
                cr_model_view v;
                assert_int_equal(cr_model_get_view(model, &v), CR_OK);
                double e = model_rel_window(model, 0, h, L);
                if (e > 1e-9)
                    fprintf(stderr, "L %zu n %zu method %d: rel l2 %.3e\n", L, n, (int)meths[mm], e);
                assert_true(e <= 1e-9);
                assert_true(v.record[0].err_window <= 1e-9);
                assert_int_equal(v.record[0].order, n);
                assert_int_equal(cr_model_order(model, 0), n);
                assert_int_equal(cr_model_check_stable(model, 1e-6 * 0.999), CR_OK);
                cr_model_destroy(model);
            }
            free(h);
        }
}

/* Trained S4D kernels (exact order <= 64) at N = 64 on the window.
 * TARGET (issue 3): every channel <= 1e-6 with the default method. In
 * about a quarter of the channels the 32 pole pairs crowd near 1
 * (|lambda| ~ 0.998, angles ~ 0.009 rad apart = 1.4 Rayleigh widths of
 * the window, 0.7 of each Hankel half), the window Hankel loses rank and
 * its subspace puts poles outside the circle; auto then runs the
 * continuation of fit.c (fit_hard_window). Not met for every channel yet:
 * this test asserts the reached state on a strided subset chosen to hold
 * hard channels (0 and every 33rd: 66, 99, ... include crowded ones):
 *   - every model stable with the default margin;
 *   - pencil (no refinement) exact where the kernel is resolvable;
 *   - auto: every channel <= 1e-6, the target (all 512 measured:
 *     worst 3.9e-7, docs/results/s4d_n64.txt; before the long polish of the
 *     grid start 496 of 512, worst 1.0e-5; before the continuation 389 of
 *     512, worst 2.1e-2).
 * CONVREC_FULL_TESTS=1 runs all 512 channels (about 3 minutes on 2 cores). */
static void test_s4d(void **state)
{
    (void)state;
    const char *p = tu_data("s4d_scifar/kernels.npy");
    if (p == NULL) { skip(); return; }
    cr_array a;
    assert_int_equal(cr_npy_read(p, &a), CR_OK);
    assert_int_equal(a.ndim, 2);
    size_t C = a.shape[0], L = a.shape[1];
    size_t stride = getenv("CONVREC_FULL_TESTS") ? 1 : 33;
    size_t Cs = (C + stride - 1) / stride;
    double *h = malloc(Cs * L * sizeof *h);
    for (size_t c = 0; c < Cs; c++) memcpy(h + c * L, (double *)a.data + c * stride * L, L * sizeof *h);
    const cr_method meths[] = { CR_METHOD_PENCIL, CR_METHOD_AUTO };
    for (int mm = 0; mm < 2; mm++) {
        cr_fit_options o;
        cr_fit_options_default(&o);
        o.method = meths[mm];
        o.order = 64;
        cr_model *model = NULL;
        assert_int_equal(cr_fit(h, Cs, L, &o, &model), CR_OK);
        cr_model_view v;
        assert_int_equal(cr_model_get_view(model, &v), CR_OK);
        double worst = 0;
        size_t wc = 0, good = 0;
        for (size_t c = 0; c < Cs; c++) {
            if (v.record[c].err_window > worst) { worst = v.record[c].err_window; wc = c * stride; }
            if (v.record[c].err_window <= 1e-6) good++;
            assert_true(v.record[c].order <= 64);
        }
        fprintf(stderr, "s4d method %d: %zu of %zu channels <= 1e-6 (target: all); worst window "
                "rel l2 %.2e (channel %zu)\n", (int)meths[mm], good, Cs, worst, wc);
        if (meths[mm] == CR_METHOD_AUTO) {
            assert_int_equal(good, Cs);
            assert_true(worst <= 1e-6);
        } else {
            assert_true(good * 10 >= Cs * 6);
            assert_true(worst <= 0.5);
        }
        /* independent check of the records against the materialised model */
        for (size_t c = 0; c < Cs; c++) {
            double e = model_rel_window(model, c, h + c * L, L);
            assert_true(fabs(e - v.record[c].err_window) <= 1e-9 + 1e-6 * e);
        }
        assert_int_equal(cr_model_check_stable(model, 1e-6 * 0.999), CR_OK);
        cr_model_destroy(model);
    }
    free(h);
    cr_array_free(&a);
}

/* Every method returns stable models, also for kernels whose natural poles
 * sit on or outside the unit circle. */
static void test_stability(void **state)
{
    (void)state;
    size_t L = 256, C = 4;
    double *h = malloc(C * L * sizeof *h);
    uint64_t s = 77;
    for (size_t k = 0; k < L; k++) {
        h[0 * L + k] = cos(0.3 * (double)k) + 0.5 * cos(1.1 * (double)k);  /* on the circle */
        h[1 * L + k] = pow(1.002, (double)k) * cos(0.7 * (double)k);      /* growing */
        h[2 * L + k] = tu_normal(&s);                                      /* white noise */
        h[3 * L + k] = (k % 17 == 0) ? 1.0 : 0.0;                          /* periodic pulses */
    }
    const cr_method meths[] = { CR_METHOD_BT, CR_METHOD_PENCIL, CR_METHOD_AUTO, CR_METHOD_HNA };
    for (int hz = 0; hz < 2; hz++)
        for (int mm = 0; mm < 4; mm++) {
            cr_fit_options o;
            cr_fit_options_default(&o);
            o.method = meths[mm];
            o.horizon = (cr_horizon)hz;
            o.order = 8;
            o.margin = 1e-3;
            cr_model *model = NULL;
            assert_int_equal(cr_fit(h, C, L, &o, &model), CR_OK);
            assert_int_equal(cr_model_check_stable(model, 1e-3 * 0.999), CR_OK);
            cr_model_view v;
            assert_int_equal(cr_model_get_view(model, &v), CR_OK);
            for (size_t c = 0; c < C; c++) {
                assert_true(isfinite(v.record[c].err_window));
                assert_true(isfinite(v.record[c].err_hinf));
                assert_true(v.record[c].sigma_next >= 0);
                assert_true(v.record[c].bt_bound >= v.record[c].sigma_next);
                /* AAK lower bound holds for every stable model */
                assert_true(v.record[c].err_hinf >= v.record[c].sigma_next * (1 - 1e-3));
            }
            cr_model_destroy(model);
        }
    free(h);
}

typedef struct prog { size_t calls, last_done, total; int bad; } prog;
static void on_progress(void *ctx, size_t done, size_t total)
{
    prog *p = ctx;
    if (done < p->last_done || done > total) p->bad = 1;
    p->calls++;
    p->last_done = done;
    p->total = total;
}

/* --tol: channels of exact orders 2, 6 and 11 get exactly those orders. */
static void test_tol(void **state)
{
    (void)state;
    size_t L = 400, C = 5;
    const size_t ns[] = { 2, 6, 11, 0, 3 };
    double *h = malloc(C * L * sizeof *h);
    for (size_t c = 0; c < C; c++) modal_kernel(h + c * L, L, ns[c], 500 + c);
    memset(h + 3 * L, 0, L * sizeof *h);   /* all-zero channel */
    h[3 * L] = 0.25;                        /* ... with a feedthrough */
    for (int mm = 0; mm < 3; mm++) {
        const cr_method meths[] = { CR_METHOD_AUTO, CR_METHOD_PENCIL, CR_METHOD_BT };
        cr_fit_options o;
        cr_fit_options_default(&o);
        o.method = meths[mm];
        o.tol = 1e-8;
        prog pg = { 0, 0, 0, 0 };
        o.progress = on_progress;
        o.progress_ctx = &pg;
        cr_model *model = NULL;
        assert_int_equal(cr_fit(h, C, L, &o, &model), CR_OK);
        assert_int_equal(pg.bad, 0);
        assert_true(pg.calls >= 1);
        assert_int_equal(pg.last_done, C);
        assert_int_equal(pg.total, C);
        cr_model_view v;
        assert_int_equal(cr_model_get_view(model, &v), CR_OK);
        for (size_t c = 0; c < C; c++) {
            if (meths[mm] == CR_METHOD_BT) {
                /* bt is an infinite-horizon method: it must meet tol on the
                 * window, possibly with a larger order */
                assert_true(v.record[c].order >= ns[c]);
            } else {
                assert_int_equal(v.record[c].order, ns[c]);
            }
            assert_true(v.record[c].err_window <= 1e-8);
        }
        assert_true(v.d[3] == 0.25);
        assert_int_equal(v.method, meths[mm]);
        cr_model_destroy(model);
    }
    free(h);
}

/* A fit does not depend on the kernel's scale (hardening issue, defect 2:
 * a bank times 1e170 used to fit to order 0 with error NaN, times 1e-170
 * to order 0 with a false error 0). By powers of two the results are the
 * same exactly; by 1e+-170 nearly the same orders, the tolerance met, and
 * every recorded figure finite. */
static void test_scale_invariance(void **state)
{
    (void)state;
    const size_t L = 300, C = 4;
    double *h = malloc(C * L * sizeof *h), *hs = malloc(C * L * sizeof *hs);
    for (size_t c = 0; c < C; c++) modal_kernel(h + c * L, L, 6 + 2 * c, 900 + c);
    for (size_t k = 0; k < L; k++) h[3 * L + k] += 1e-3 * sin(0.37 * (double)k * k); /* not exact */
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.tol = 1e-6;
    for (int hz = 0; hz < 2; hz++) {
        o.horizon = (cr_horizon)hz;
        cr_model *ref = NULL;
        assert_int_equal(cr_fit(h, C, L, &o, &ref), CR_OK);
        cr_model_view rv;
        cr_model_get_view(ref, &rv);
        const double scales[] = { 0x1p560, 0x1p-560, 1e170, 1e-170 };
        for (int t = 0; t < 4; t++) {
            for (size_t i = 0; i < C * L; i++) hs[i] = h[i] * scales[t];
            cr_model *m = NULL;
            assert_int_equal(cr_fit(hs, C, L, &o, &m), CR_OK);
            cr_model_view v;
            cr_model_get_view(m, &v);
            int exact = t < 2;
            for (size_t c = 0; c < C; c++) {
                const cr_fit_record *a = &v.record[c], *b = &rv.record[c];
                assert_true(a->order > 0);
                if (exact) {
                    assert_int_equal(a->order, b->order);
                    assert_true(a->err_window == b->err_window);
                } else {
                    /* by 1e+-170 the kernels differ by rounding, and the
                     * nonconvex search may end a little elsewhere */
                    assert_true(a->order + 2 >= b->order && a->order <= b->order + 2);
                }
                assert_true(a->err_window <= 1e-6 || hz == 1);
                assert_true(fabs(a->h_norm / scales[t] - b->h_norm) <= 1e-12 * b->h_norm);
                if (a->order == b->order)
                    assert_true(fabs(a->sigma_next / scales[t] - b->sigma_next) <=
                                1e-9 * b->sigma_next + 1e-13 * b->h_norm);
                assert_true(isfinite(a->err_hinf) && isfinite(a->bt_bound));
                if (exact)
                    for (size_t j = 0; j < v.M; j++) {
                        size_t i = c * v.M + j;
                        assert_true(v.pole_re[i] == rv.pole_re[i]);
                        assert_true(v.res_re[i] == rv.res_re[i] * scales[t]);
                        assert_true(v.res_im[i] == rv.res_im[i] * scales[t]);
                    }
            }
            /* the public error function agrees with the record */
            cr_fit_record e;
            assert_int_equal(cr_model_errors(m, 3, hs + 3 * L, L, &e), CR_OK);
            assert_true(fabs(e.err_window - v.record[3].err_window) <= 1e-9 * v.record[3].err_window);
            cr_model_destroy(m);
        }
        cr_model_destroy(ref);
    }
    free(h);
    free(hs);
}

static void test_special_kernels(void **state)
{
    (void)state;
    double z[64] = { 0 };
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.order = 4;
    cr_model *m = NULL;
    /* all zero: d only */
    assert_int_equal(cr_fit(z, 1, 64, &o, &m), CR_OK);
    assert_int_equal(cr_model_order(m, 0), 0);
    cr_model_view v;
    assert_int_equal(cr_model_get_view(m, &v), CR_OK);
    assert_true(v.d[0] == 0.0);
    assert_true(v.record[0].sigma_next == 0.0);
    cr_model_destroy(m);
    /* L = 1: d only (order must be 0 -> tol mode) */
    double one = 0.7;
    o.order = 0;
    assert_int_equal(cr_fit(&one, 1, 1, &o, &m), CR_OK);
    assert_int_equal(cr_model_order(m, 0), 0);
    assert_int_equal(cr_model_get_view(m, &v), CR_OK);
    assert_true(v.d[0] == 0.7);
    cr_model_destroy(m);
    /* order above the Hankel rank of a short kernel: exact, lower order */
    double h5[5] = { 1, 0.5, 0.25, 0.125, 0.0625 };
    o.order = 4;
    o.method = CR_METHOD_PENCIL;
    assert_int_equal(cr_fit(h5, 1, 5, &o, &m), CR_OK);
    assert_int_equal(cr_model_get_view(m, &v), CR_OK);
    assert_true(v.record[0].err_window < 1e-12);
    assert_int_equal(cr_model_order(m, 0), 1);
    cr_model_destroy(m);
}

static void test_bad_input(void **state)
{
    (void)state;
    double h[32];
    uint64_t s = 1;
    tu_fill(h, 32, &s);
    cr_fit_options o;
    cr_fit_options_default(&o);
    o.order = 4;
    cr_model *m = (cr_model *)&o;  /* must be reset to NULL on failure */
    assert_int_equal(cr_fit(h, 1, 32, &o, NULL), CR_EINVAL);
    assert_int_equal(cr_fit(NULL, 1, 32, &o, &m), CR_EINVAL);
    assert_null(m);
    assert_int_equal(cr_fit(h, 0, 32, &o, &m), CR_EINVAL);
    assert_int_equal(cr_fit(h, 1, 0, &o, &m), CR_EINVAL);
    assert_int_equal(cr_fit(h, (size_t)1 << 40, (size_t)1 << 40, &o, &m), CR_EOVERFLOW);
    o.order = 32;
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_EINVAL);
    assert_true(strstr(cr_error_detail(), "order") != NULL);
    o.order = (size_t)-1;   /* a negative order through a cast */
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_EINVAL);
    o.order = 0;
    o.tol = 0;
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_EINVAL);
    o.tol = -1e-3;
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_EINVAL);
    o.tol = NAN;
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_EINVAL);
    assert_true(strstr(cr_error_detail(), "tolerance") != NULL);
    o.tol = INFINITY;
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_EINVAL);
    cr_fit_options_default(&o);
    o.order = 4;
    o.margin = 0;
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_EINVAL);
    o.margin = 1e-6;
    o.method = (cr_method)42;
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_EINVAL);
    o.method = CR_METHOD_AUTO;
    o.horizon = (cr_horizon)9;
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_EINVAL);
    o.horizon = CR_HORIZON_WINDOW;
    h[17] = NAN;
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_ENONFINITE);
    assert_true(strstr(cr_error_detail(), "k = 17") != NULL);
    h[17] = -INFINITY;
    assert_int_equal(cr_fit(h, 1, 32, &o, &m), CR_ENONFINITE);
    assert_null(m);
    h[17] = 0.5;
    /* NULL options = defaults (tol mode) */
    assert_int_equal(cr_fit(h, 1, 32, NULL, &m), CR_OK);
    assert_non_null(m);
    cr_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modal_basics),
        cmocka_unit_test(test_bt_exact),
        cmocka_unit_test(test_bt_certificate),
        cmocka_unit_test(test_exact_recovery),
        cmocka_unit_test(test_s4d),
        cmocka_unit_test(test_stability),
        cmocka_unit_test(test_tol),
        cmocka_unit_test(test_scale_invariance),
        cmocka_unit_test(test_special_kernels),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
