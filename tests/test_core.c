/* The core module's portable pieces: CMPLX / CMPLXF under every compiler
 * (defect 7: clang had no CMPLX from glibc, so this file did not link),
 * with the signed zeros and infinities that x + I * y loses. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "core/core.h"
#include "testutil.h"

#include <complex.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* volatile operands keep the compiler from folding the checks away */
static volatile double vzero = 0.0, vinf = INFINITY, vone = 1.0;

static void test_cmplx_parts(void **st)
{
    (void)st;
    double complex z = CMPLX(vone, -vzero);
    assert_true(creal(z) == 1.0 && cimag(z) == 0.0 && signbit(cimag(z)));
    z = CMPLX(-vzero, vone);
    assert_true(creal(z) == 0.0 && signbit(creal(z)) && cimag(z) == 1.0);
    /* an infinite part stays infinite and the other part stays finite */
    z = CMPLX(vinf, vone);
    assert_true(isinf(creal(z)) && creal(z) > 0 && cimag(z) == 1.0);
    z = CMPLX(vone, -vinf);
    assert_true(creal(z) == 1.0 && isinf(cimag(z)) && cimag(z) < 0);
    z = CMPLX(NAN, vzero);
    assert_true(isnan(creal(z)) && cimag(z) == 0.0 && !signbit(cimag(z)));
    /* arguments are converted to double (an int, a float) */
    z = CMPLX(3, 0.5f);
    assert_true(creal(z) == 3.0 && cimag(z) == 0.5);

    float complex f = CMPLXF((float)vone, (float)-vzero);
    assert_true(crealf(f) == 1.0f && cimagf(f) == 0.0f && signbit(cimagf(f)));
    f = CMPLXF((float)vinf, 2.0f);
    assert_true(isinf(crealf(f)) && cimagf(f) == 2.0f);
}

/* A = U diag(s) V^T from the outputs of an SVD with dgesdd's jobz, where
 * 'O' left U (m >= n) or V^T (m < n) in A; returns the relative error. */
static double svd_residual(char jobz, size_t m, size_t n, const double *A0, const double *A,
                           const double *s, const double *U, const double *VT)
{
    size_t k = m < n ? m : n, ldu = m, ldvt = jobz == 'A' ? n : k;
    const double *u = U, *vt = VT;
    if (jobz == 'O' && m >= n) { u = A; ldvt = n; }
    if (jobz == 'O' && m < n) { vt = A; ldvt = m; }
    double num = 0, den = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double a = 0;
            for (size_t q = 0; q < k; q++) a += u[i + q * ldu] * s[q] * vt[q + j * ldvt];
            num += (a - A0[i + j * m]) * (a - A0[i + j * m]);
            den += A0[i + j * m] * A0[i + j * m];
        }
    return sqrt(num / den);
}

/* cr__svd (dgesdd) and its fallback cr__svd_qr (dgesvd) agree, for every
 * jobz and shape: the fallback maps dgesdd's arguments correctly. */
static void test_svd_fallback_agrees(void **st)
{
    (void)st;
    const size_t shapes[][2] = {{7, 4}, {4, 7}, {5, 5}};
    const char jobs[] = "NSAO";
    uint64_t seed = 11;
    for (size_t sh = 0; sh < 3; sh++) {
        size_t m = shapes[sh][0], n = shapes[sh][1], k = m < n ? m : n;
        double A0[49], A[2][49], s[2][7], U[2][49], VT[2][49];
        tu_fill(A0, m * n, &seed);
        for (size_t j = 0; j < 4; j++) {
            char jz = jobs[j];
            lapack_int ldvt = jz == 'A' || (jz == 'O' && m >= n) ? (lapack_int)n : (lapack_int)k;
            for (int w = 0; w < 2; w++) {
                memcpy(A[w], A0, m * n * sizeof *A0);
                lapack_int info = (w ? cr__svd_qr : cr__svd)(jz, (lapack_int)m, (lapack_int)n, A[w],
                                                            (lapack_int)m, s[w], U[w], (lapack_int)m,
                                                            VT[w], ldvt);
                assert_int_equal(info, 0);
                if (jz != 'N') assert_true(svd_residual(jz, m, n, A0, A[w], s[w], U[w], VT[w]) < 1e-13);
            }
            assert_true(tu_rel_l2(s[1], s[0], k) < 1e-13);
        }
    }
}

/* A matrix on which dgesdd returns info 0 with NaN vectors (Debian's
 * OpenBLAS 0.3.21; see src/core/svd.c): cr__svd's result is finite and
 * reconstructs it. Where dgesdd gets it right the check still holds. */
static void test_svd_nan_fallback(void **st)
{
    (void)st;
    const size_t n = 62;
    char path[1024];
    const char *src = getenv("CONVREC_SRCDIR");
    snprintf(path, sizeof path, "%s/tests/data/dgesdd_nan_62x62.f64", src ? src : ".");
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_message("%s not found: skipped\n", path);
        skip();
    }
    double *A0 = malloc(n * n * sizeof *A0), *A = malloc(n * n * sizeof *A);
    double *s = malloc(n * sizeof *s), *VT = malloc(n * n * sizeof *VT), dummy = 0;
    assert_non_null(A0);
    assert_non_null(A);
    assert_non_null(s);
    assert_non_null(VT);
    assert_int_equal(fread(A0, sizeof *A0, n * n, f), n * n);
    fclose(f);
    memcpy(A, A0, n * n * sizeof *A);
    lapack_int raw = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'O', (lapack_int)n, (lapack_int)n, A,
                                    (lapack_int)n, s, &dummy, 1, VT, (lapack_int)n);
    size_t bad = 0;
    for (size_t i = 0; i < n * n; i++) bad += !isfinite(VT[i]);
    print_message("dgesdd alone: info %d, %zu non-finite entries of V^T\n", (int)raw, bad);
    memcpy(A, A0, n * n * sizeof *A);
    lapack_int info = cr__svd('O', (lapack_int)n, (lapack_int)n, A, (lapack_int)n, s, &dummy, 1, VT,
                              (lapack_int)n);
    assert_int_equal(info, 0);
    for (size_t i = 0; i < n * n; i++) {
        assert_true(isfinite(A[i]));
        assert_true(isfinite(VT[i]));
    }
    assert_true(svd_residual('O', n, n, A0, A, s, NULL, VT) < 1e-13);
    free(A0);
    free(A);
    free(s);
    free(VT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmplx_parts),
        cmocka_unit_test(test_svd_fallback_agrees),
        cmocka_unit_test(test_svd_nan_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
