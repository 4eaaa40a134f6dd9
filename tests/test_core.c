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
#include <math.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmplx_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
