/* Hankel singular values and vectors (hankel.c) against a plain dense
 * LAPACK SVD of the explicitly formed matrix, the randomized path against
 * the dense one, and heat-cont against the values SLICOT published. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <lapacke.h>

#include "fit/fit.h"
#include "testutil.h"

/* Kernel families: a decaying sum of damped oscillations plus decaying
 * noise (full numerical rank, fast-decaying HSV). */
static void make_kernel(double *h, size_t L, uint64_t seed)
{
    uint64_t s = seed;
    memset(h, 0, L * sizeof *h);
    for (int m = 0; m < 6; m++) {
        double rho = 0.9 + 0.09 * (tu_uniform(&s) + 1) * 0.5;
        double th = 3.0 * (tu_uniform(&s) + 1) * 0.5;
        double a = tu_uniform(&s);
        for (size_t k = 0; k < L; k++) h[k] += a * pow(rho, (double)k) * cos(th * (double)k);
    }
    for (size_t k = 0; k < L; k++) h[k] += 1e-3 * tu_normal(&s) * exp(-(double)k / (0.2 * (double)L));
}

/* All singular values of the formed matrix by dgesdd. */
static double *ref_sv(const double *h, size_t L, cr_horizon w, size_t *r)
{
    size_t m, n;
    if (w == CR_HORIZON_INFINITE) { m = n = L - 1; }
    else { m = L / 2; n = L - m; }
    *r = m < n ? m : n;
    double *H = malloc(m * n * sizeof *H), *s = malloc(*r * sizeof *s);
    assert_non_null(H);
    assert_non_null(s);
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < m; i++) H[i + j * m] = i + j + 1 < L ? h[i + j + 1] : 0.0;
    double d = 0;
    assert_int_equal(LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', (lapack_int)m, (lapack_int)n, H,
                                    (lapack_int)m, s, &d, 1, &d, 1), 0);
    free(H);
    return s;
}

/* max_i ||H v_i - s_i u_i|| and ||H^T u_i - s_i v_i|| and orthonormality. */
static double triplet_residual(const double *h, size_t L, const cr__hsvd *d, size_t k)
{
    double worst = 0;
    for (size_t c = 0; c < k; c++) {
        const double *u = d->U + c * d->m, *v = d->V + c * d->n;
        for (size_t i = 0; i < d->m; i++) {
            double acc = 0;
            for (size_t j = 0; j < d->n; j++) acc += (i + j + 1 < L ? h[i + j + 1] : 0.0) * v[j];
            worst = fmax(worst, fabs(acc - d->sigma[c] * u[i]));
        }
        for (size_t j = 0; j < d->n; j++) {
            double acc = 0;
            for (size_t i = 0; i < d->m; i++) acc += (i + j + 1 < L ? h[i + j + 1] : 0.0) * u[i];
            worst = fmax(worst, fabs(acc - d->sigma[c] * v[j]));
        }
        double nu = 0, nv = 0;
        for (size_t i = 0; i < d->m; i++) nu += u[i] * u[i];
        for (size_t j = 0; j < d->n; j++) nv += v[j] * v[j];
        worst = fmax(worst, d->sigma[0] * fmax(fabs(nu - 1), fabs(nv - 1)));
    }
    return worst;
}

static void test_dense_vs_lapack(void **state)
{
    (void)state;
    const size_t Ls[] = { 2, 3, 4, 7, 50, 51, 130, 131 };
    for (size_t t = 0; t < sizeof Ls / sizeof *Ls; t++) {
        size_t L = Ls[t];
        double *h = malloc(L * sizeof *h);
        make_kernel(h, L, 100 + L);
        for (int w = 0; w < 2; w++) {
            size_t r;
            double *ref = ref_sv(h, L, (cr_horizon)w, &r);
            cr__hsvd d;
            size_t k = r < 5 ? r : 5;
            assert_int_equal(cr__hankel_svd(h, L, (cr_horizon)w, &(cr__hsvd_req){ k, 0, 1, 0, 0, CR__HSVD_DENSE, 0.0 }, &d), CR_OK);
            assert_int_equal(d.r, r);
            assert_int_equal(d.nsigma, r);
            double fro2 = 0;
            for (size_t i = 0; i < r; i++) {
                assert_true(fabs(d.sigma[i] - ref[i]) <= 1e-13 * ref[0]);
                fro2 += ref[i] * ref[i];
            }
            assert_true(fabs(d.fro2 - fro2) <= 1e-12 * fro2);
            assert_true(triplet_residual(h, L, &d, k) <= 1e-12 * ref[0]);
            /* exact tail when dense */
            double tail = 0;
            for (size_t i = 2; i < r; i++) tail += ref[i];
            assert_true(fabs(cr__hsvd_tail(&d, 2) - tail) <= 1e-12 * ref[0] * (double)r);
            cr__hsvd_free(&d);
            free(ref);
        }
        free(h);
    }
}

/* Lanczos stops when every wanted residual is below
 * rtol * sigma_1 (rtol = 1e-12 here); the residual bounds the distance to a
 * singular value, so the leading values must agree with the dense ones to
 * about 1e-12 sigma_1 (allow 1e-11 for rounding in the dense reference). */
static void test_lanczos_vs_dense(void **state)
{
    (void)state;
    const size_t Ls[] = { 400, 1001 };
    for (size_t t = 0; t < 2; t++) {
        size_t L = Ls[t];
        double *h = malloc(L * sizeof *h);
        make_kernel(h, L, 7 + L);
        for (int w = 0; w < 2; w++) {
            size_t r;
            double *ref = ref_sv(h, L, (cr_horizon)w, &r);
            cr__hsvd d;
            assert_int_equal(cr__hankel_svd(h, L, (cr_horizon)w, &(cr__hsvd_req){ 12, 0, 1, 1e-12, 0, CR__HSVD_LANCZOS, 0.0 }, &d), CR_OK);
            assert_int_equal(d.dense, 0);
            assert_true(d.nconv >= 12);
            for (size_t i = 0; i < 12; i++) {
                assert_true(fabs(d.sigma[i] - ref[i]) <= 1e-11 * ref[0]);
                assert_true(d.err[i] <= 1e-12 * ref[0]);
                /* Ritz values never exceed the true ones */
                assert_true(d.sigma[i] <= ref[i] * (1 + 1e-12));
            }
            assert_true(triplet_residual(h, L, &d, 12) <= 1e-11 * ref[0]);
            /* the tail estimate is an upper bound, and not a silly one */
            for (size_t N = 2; N <= 10; N += 4) {
                double tail = 0;
                for (size_t i = r; i-- > N;) tail += ref[i];
                double est = cr__hsvd_tail(&d, N);
                assert_true(est >= tail * (1 - 1e-9));
                assert_true(est <= tail * sqrt((double)r) * 10 + 1e-6 * ref[0]);
            }
            cr__hsvd_free(&d);
            free(ref);
        }
        free(h);
    }
}

/* Fits ask for rough vectors (ttol = 1e-2) but the values are the
 * record's certificates: on flat spectra (decaying noise, the kernels of
 * the python certificate test, where a subspace iteration stalled at
 * 2.5e-5 sigma_1) the values must still match the dense ones to 1e-9
 * sigma_1 and never exceed them (Ritz values are lower bounds). Sizes
 * beyond the exact-values limit (HK_EXACT_MAX = 256) exercise the Lanczos
 * values themselves, with thick restarts; L = 256 gets exact values and
 * an exact tail. Odd L gives a rectangular window Hankel. */
static void test_flat_spectrum_values(void **state)
{
    (void)state;
    const size_t Ls[] = { 256, 600, 1201 };
    for (size_t t = 0; t < 3; t++) {
        size_t L = Ls[t];
        double *h = malloc(L * sizeof *h);
        uint64_t sd = 11 + L;
        for (size_t k = 0; k < L; k++) h[k] = tu_normal(&sd) * exp(-(double)k / 40.0);
        for (int w = 0; w < 2; w++) {
            size_t r;
            double *ref = ref_sv(h, L, (cr_horizon)w, &r);
            const size_t Ns[] = { 4, 10, 16 };
            for (size_t q = 0; q < 3; q++) {
                size_t N = Ns[q];
                cr__hsvd d;
                assert_int_equal(cr__hankel_svd(h, L, (cr_horizon)w, &(cr__hsvd_req){ N + 1, N + 1, 1, 1e-12, 1e-2, CR__HSVD_AUTO, 0.0 }, &d),
                                 CR_OK);
                for (size_t i = 0; i <= N; i++) {
                    if (fabs(d.sigma[i] - ref[i]) > 1e-9 * ref[0])
                        fprintf(stderr, "L=%zu w=%d N=%zu sigma_%zu %.3e off by %.2e\n", L, w, N,
                                i + 1, ref[i], fabs(d.sigma[i] - ref[i]) / ref[0]);
                    assert_true(fabs(d.sigma[i] - ref[i]) <= 1e-9 * ref[0]);
                    assert_true(d.sigma[i] <= ref[i] * (1 + 1e-12) + 1e-14 * ref[0]);
                }
                /* rough vectors still satisfy the requested residual */
                assert_true(triplet_residual(h, L, &d, N + 1) <= 1.01e-2 * ref[N] + 1e-11 * ref[0]);
                double tail = 0;
                for (size_t i = r; i-- > N;) tail += ref[i];
                double est = cr__hsvd_tail(&d, N);
                if (w == CR_HORIZON_INFINITE && r <= 256) {
                    assert_int_equal(d.dense, 1);
                    assert_true(fabs(est - tail) <= 1e-12 * tail);
                } else {
                    assert_true(est >= tail * (1 - 1e-9));
                }
                cr__hsvd_free(&d);
            }
            free(ref);
        }
        free(h);
    }
}

/* An exact sum of n modes has window Hankel rank n: the randomized range
 * finder captures it in one sweep, sigma_{n+1} is at rounding level. */
static void test_exact_rank(void **state)
{
    (void)state;
    size_t L = 2000;
    double *h = calloc(L, sizeof *h);
    uint64_t s = 3;
    for (int m = 0; m < 4; m++) {
        double rho = 0.995 - 0.01 * m, th = 0.3 + 0.5 * m, a = tu_uniform(&s);
        for (size_t k = 1; k < L; k++) h[k] += a * pow(rho, (double)(k - 1)) * cos(th * (double)k);
    }
    cr__hsvd d;
    assert_int_equal(cr__hankel_svd(h, L, CR_HORIZON_WINDOW, &(cr__hsvd_req){ 10, 0, 1, 1e-12, 0, CR__HSVD_AUTO, 0.0 }, &d), CR_OK);
    assert_int_equal(d.dense, 0);
    assert_true(d.sigma[7] > 1e-6 * d.sigma[0]);
    assert_true(d.sigma[8] < 1e-12 * d.sigma[0]);
    cr__hsvd_free(&d);
    free(h);
}

static void test_heat_cont(void **state)
{
    (void)state;
    const char *ph = tu_data("mor/heat-cont_L4096.npy");
    if (ph == NULL) { skip(); return; }
    cr_array a, b;
    assert_int_equal(cr_npy_read(ph, &a), CR_OK);
    const char *ps = tu_data("mor/heat_cont_hsv_slicot.npy");
    assert_non_null(ps);
    assert_int_equal(cr_npy_read(ps, &b), CR_OK);
    assert_int_equal(a.dtype, CR_FLOAT64);
    size_t L = cr_array_count(&a);
    assert_int_equal(L, 4096);
    const double *ref = b.data;
    double sig[8], err[8];
    size_t kout = 0;
    assert_int_equal(cr_hsv(a.data, L, CR_HORIZON_INFINITE, 8, sig, &kout, err), CR_OK);
    assert_int_equal(kout, 8);
    for (int i = 0; i < 8; i++) {
        double rel = fabs(sig[i] - ref[i]) / ref[i];
        if (rel > 1e-9) fprintf(stderr, "heat-cont sigma_%d = %.12e, slicot %.12e, rel %.2e\n",
                                i + 1, sig[i], ref[i], rel);
        assert_true(rel <= 1e-9);
        assert_true(err[i] <= 1e-11 * sig[0]);
    }
    cr_array_free(&a);
    cr_array_free(&b);
}

static void test_bad_input(void **state)
{
    (void)state;
    double h[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, s[8];
    size_t k = 99;
    assert_int_equal(cr_hsv(NULL, 8, CR_HORIZON_WINDOW, 2, s, &k, NULL), CR_EINVAL);
    assert_int_equal(k, 0);
    assert_int_equal(cr_hsv(h, 8, CR_HORIZON_WINDOW, 2, NULL, NULL, NULL), CR_EINVAL);
    assert_int_equal(cr_hsv(h, 0, CR_HORIZON_WINDOW, 2, s, NULL, NULL), CR_EINVAL);
    assert_int_equal(cr_hsv(h, 8, CR_HORIZON_WINDOW, 0, s, NULL, NULL), CR_EINVAL);
    assert_int_equal(cr_hsv(h, 8, (cr_horizon)7, 2, s, NULL, NULL), CR_EINVAL);
    assert_int_equal(cr_hsv(h, (size_t)1 << 62, CR_HORIZON_WINDOW, 2, s, NULL, NULL), CR_EOVERFLOW);
    h[3] = NAN;
    assert_int_equal(cr_hsv(h, 8, CR_HORIZON_WINDOW, 2, s, NULL, NULL), CR_ENONFINITE);
    assert_true(strstr(cr_error_detail(), "h[3]") != NULL);
    h[3] = 4;
    /* L = 1: no Hankel matrix, zero values */
    assert_int_equal(cr_hsv(h, 1, CR_HORIZON_INFINITE, 2, s, &k, NULL), CR_OK);
    assert_int_equal(k, 0);
    /* k clipped to the rank bound: window of L = 8 is 4 x 4 */
    assert_int_equal(cr_hsv(h, 8, CR_HORIZON_WINDOW, 8, s, &k, NULL), CR_OK);
    assert_int_equal(k, 4);
    assert_int_equal(cr_hsv(h, 8, CR_HORIZON_INFINITE, 8, s, &k, NULL), CR_OK);
    assert_int_equal(k, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_vs_lapack),
        cmocka_unit_test(test_lanczos_vs_dense),
        cmocka_unit_test(test_flat_spectrum_values),
        cmocka_unit_test(test_exact_rank),
        cmocka_unit_test(test_heat_cont),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
